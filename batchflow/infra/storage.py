"""`Storage`: the StorageV2 account the workloads stage through, and its three containers.

Secure by default: HTTPS only, TLS 1.2 at least, no anonymous blob access, Entra ID as the
portal's default, no cross-tenant replication, and account keys off unless the stack
turns them on. Deleted blobs and containers stay restorable for `soft_delete_days`.

With a `firewall`, the account denies network access except from the pools' subnets
(virtual network rules; the subnets carry a `Microsoft.Storage` service endpoint), the listed
public IP ranges and trusted Azure services (Batch among them). With `protect`, the account
and its containers are Pulumi-protected (a preview that would delete or replace them fails)
and carry a `CanNotDelete` management lock, which also makes Azure refuse to delete the
resource group around them. Soft delete alone does not survive deleting the account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, storage

from batchflow.infra.config import ContainerNames

__all__ = ["LOCK_NAME", "Storage", "StorageArgs", "StorageFirewall"]

#: Name of the management lock on a protected storage account.
LOCK_NAME = "batchflow-protect-data"


@dataclass(frozen=True)
class StorageFirewall:
    """Who may reach the storage account over the network when everyone else is denied."""

    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Subnets whose nodes connect (each needs a Microsoft.Storage service endpoint)."""
    ip_ranges: Sequence[str] = ()
    """Public IPv4 addresses or CIDR ranges (CI runners, offices)."""


@dataclass(frozen=True)
class StorageArgs:
    """What a `Storage` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group the account goes in."""
    location: pulumi.Input[str]
    """Azure region of the account."""
    containers: ContainerNames
    """Names of the inputs, outputs and logs containers."""
    sku: str = "Standard_LRS"
    """Redundancy: Standard_LRS, Standard_ZRS, Standard_GZRS, ..."""
    shared_key_access: bool = False
    """Whether account keys (and SAS signed with them) are accepted at all."""
    soft_delete_days: int = 7
    """Days deleted blobs and containers can be restored; 0 turns soft delete off."""
    account_name: str | None = None
    """Globally unique account name; None lets Pulumi add a random suffix to the logical name."""
    firewall: StorageFirewall | None = None
    """Deny network access but from these; None leaves the account open to every network."""
    protect: bool = False
    """Pulumi `protect` on the account and containers, and a CanNotDelete lock."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the account."""


class Storage(pulumi.ComponentResource):
    """A StorageV2 account with secure defaults and the inputs/outputs/logs containers.

    Usage: `Storage("bfdevst", StorageArgs(rg.name, "westeurope", ContainerNames(...)))`.
    """

    account_name: pulumi.Output[str]
    """The storage account's name."""
    account_id: pulumi.Output[str]
    """The storage account's resource id (the scope of the node identity's role)."""
    blob_endpoint: pulumi.Output[str]
    """`https://<account>.blob.core.windows.net`, without a trailing slash."""
    container_names: dict[str, pulumi.Output[str]]
    """Container names by role: inputs, outputs, logs."""
    container_ids: dict[str, pulumi.Output[str]]
    """Container resource ids by role (the scopes of the node identity's roles)."""

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)

        account = storage.StorageAccount(
            name,
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=args.sku),
            access_tier=storage.AccessTier.HOT,
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=args.shared_key_access,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            # Enabled: the public endpoint serves the firewall's exceptions (subnets with a
            # service endpoint, IP rules); Disabled would leave private endpoints only.
            public_network_access=storage.PublicNetworkAccess.ENABLED,
            network_rule_set=_network_rule_set(args.firewall),
            tags=dict(args.tags),
            opts=kept,
        )
        if args.protect:
            authorization.ManagementLockByScope(
                f"{name}-lock",
                lock_name=LOCK_NAME,
                scope=account.id,
                level=authorization.LockLevel.CAN_NOT_DELETE,
                notes="batchflow protectData: this account holds the stack's data; Azure also "
                "refuses to delete its resource group. See the README's Protected data.",
                opts=child,
            )
        retention = args.soft_delete_days > 0
        policy = storage.DeleteRetentionPolicyArgs(
            enabled=retention, days=args.soft_delete_days if retention else None
        )
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            delete_retention_policy=policy,
            container_delete_retention_policy=policy,
            opts=child,
        )
        self.container_names = {}
        self.container_ids = {}
        for role, container_name in args.containers.as_dict().items():
            container = storage.BlobContainer(
                f"{name}-{role}",
                container_name=container_name,
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                public_access=storage.PublicAccess.NONE,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[blob_service], protect=args.protect
                ),
            )
            self.container_names[role] = container.name
            self.container_ids[role] = container.id

        self.account_name = account.name
        self.account_id = account.id
        self.blob_endpoint = account.primary_endpoints.apply(lambda e: e.blob.rstrip("/"))
        self.register_outputs(
            {
                "accountName": self.account_name,
                "accountId": self.account_id,
                "blobEndpoint": self.blob_endpoint,
                "containers": self.container_names,
            }
        )


def _network_rule_set(firewall: StorageFirewall | None) -> storage.NetworkRuleSetArgs:
    if firewall is None:
        return storage.NetworkRuleSetArgs(
            default_action=storage.DefaultAction.ALLOW, bypass=storage.Bypass.AZURE_SERVICES
        )
    return storage.NetworkRuleSetArgs(
        default_action=storage.DefaultAction.DENY,
        # Trusted Azure services (Batch's auto-storage among them) keep their access.
        bypass=storage.Bypass.AZURE_SERVICES,
        virtual_network_rules=[
            storage.VirtualNetworkRuleArgs(
                virtual_network_resource_id=subnet_id, action=storage.Action.ALLOW
            )
            for subnet_id in firewall.subnet_ids
        ]
        or None,
        ip_rules=[
            storage.IPRuleArgs(i_p_address_or_range=ip_range, action=storage.Action.ALLOW)
            for ip_range in firewall.ip_ranges
        ]
        or None,
    )
