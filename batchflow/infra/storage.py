"""`Storage`: the StorageV2 account the workloads stage through, and its three containers.

Secure by default: HTTPS only, TLS 1.2 at least, no anonymous blob access, Entra ID as the
portal's default, no cross-tenant replication, and account keys off unless the stack
turns them on. Deleted blobs and containers stay restorable for `soft_delete_days`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import storage

from batchflow.infra.config import ContainerNames

__all__ = ["Storage", "StorageArgs"]


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

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

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
            public_network_access=storage.PublicNetworkAccess.ENABLED,
            tags=dict(args.tags),
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
        for role, container_name in args.containers.as_dict().items():
            container = storage.BlobContainer(
                f"{name}-{role}",
                container_name=container_name,
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                public_access=storage.PublicAccess.NONE,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[blob_service]),
            )
            self.container_names[role] = container.name

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
