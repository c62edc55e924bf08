"""`BatchAccount`: the Batch account, linked to its auto-storage account through an identity.

Pools are allocated by Batch (`BatchService`) unless the stack chooses `UserSubscription`,
which also needs a Key Vault. Auto-storage is reached with the account's managed identity
(`BatchAccountManagedIdentity`), never with storage keys; nodes that use auto-storage act as
the pools' identity, not the account's. Which clients may authenticate (Entra ID only, or
shared keys too) and whether the endpoint is public are the stack's choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import batch

__all__ = ["BatchAccount", "BatchAccountArgs"]


@dataclass(frozen=True)
class BatchAccountArgs:
    """What a `BatchAccount` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group the account goes in."""
    location: pulumi.Input[str]
    """Azure region of the account (its pools run there too)."""
    storage_account_id: pulumi.Input[str]
    """Resource id of the auto-storage account."""
    identity_resource_id: pulumi.Input[str]
    """User-assigned identity of the account, with a blob data role on the storage account."""
    node_identity_resource_id: pulumi.Input[str]
    """The pools' identity: what nodes that use auto-storage act as."""
    authentication_modes: Sequence[str] = ("AAD",)
    """Allowed data-plane authentication: AAD (Entra ID) and/or SharedKey."""
    public_network_access: bool = True
    """Whether the account endpoint is reachable from the internet."""
    pool_allocation_mode: str = "BatchService"
    """BatchService, or UserSubscription (then `key_vault_id` and `key_vault_url` too)."""
    key_vault_id: str | None = None
    """Resource id of the Key Vault a UserSubscription account keeps its secrets in."""
    key_vault_url: str | None = None
    """URL of that Key Vault."""
    account_name: str | None = None
    """Account name (unique in its region); None lets Pulumi add a random suffix."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the account."""


class BatchAccount(pulumi.ComponentResource):
    """A Batch account with identity-based auto-storage.

    Usage: `BatchAccount("bf", BatchAccountArgs(rg.name, loc, st.account_id, acct_id, nodes_id))`.
    """

    account_name: pulumi.Output[str]
    """The account's name (`AZURE_BATCH_ACCOUNT`)."""
    endpoint: pulumi.Output[str]
    """`https://<account>.<region>.batch.azure.com` (`AZURE_BATCH_ENDPOINT`)."""
    account_id: pulumi.Output[str]
    """The account's resource id."""

    def __init__(
        self, name: str, args: BatchAccountArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:BatchAccount", name, None, opts)

        key_vault = None
        if args.pool_allocation_mode == "UserSubscription":
            if not (args.key_vault_id and args.key_vault_url):
                raise ValueError("a UserSubscription Batch account needs a Key Vault id and URL")
            key_vault = batch.KeyVaultReferenceArgs(id=args.key_vault_id, url=args.key_vault_url)

        account = batch.BatchAccount(
            name,
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            pool_allocation_mode=batch.PoolAllocationMode(args.pool_allocation_mode),
            key_vault_reference=key_vault,
            identity=batch.BatchAccountIdentityArgs(
                type=batch.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.identity_resource_id],
            ),
            auto_storage=batch.AutoStorageBasePropertiesArgs(
                storage_account_id=args.storage_account_id,
                authentication_mode=batch.AutoStorageAuthenticationMode.BATCH_ACCOUNT_MANAGED_IDENTITY,
                node_identity_reference=batch.ComputeNodeIdentityReferenceArgs(
                    resource_id=args.node_identity_resource_id
                ),
            ),
            allowed_authentication_modes=[
                batch.AuthenticationMode(mode) for mode in args.authentication_modes
            ],
            public_network_access=(
                batch.PublicNetworkAccessType.ENABLED
                if args.public_network_access
                else batch.PublicNetworkAccessType.DISABLED
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.account_name = account.name
        self.account_id = account.id
        self.endpoint = account.account_endpoint.apply(lambda host: f"https://{host}")
        self.register_outputs(
            {
                "accountName": self.account_name,
                "endpoint": self.endpoint,
                "accountId": self.account_id,
            }
        )
