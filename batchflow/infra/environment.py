"""`BatchEnvironment`: everything one stack provisions, and the stack outputs it hands over.

```
BatchEnvironment
├── ResourceGroup
├── Storage         StorageV2 account, inputs/outputs/logs containers
├── NodeIdentity    user-assigned identity, Storage Blob Data Contributor on the account
├── BatchAccount    identity-based auto-storage
├── Network         only when the stack sets vnetAddressSpace
└── Pool ...        one per entry of the `pools` setting
```

The stack outputs are the contract the CLI consumes (see the README): names, endpoints
and ids only, never a key or a SAS.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import resources

from batchflow.infra.account import BatchAccount, BatchAccountArgs
from batchflow.infra.config import StackConfig
from batchflow.infra.identity import NodeIdentity, NodeIdentityArgs
from batchflow.infra.network import Network, NetworkArgs
from batchflow.infra.pool import Pool, PoolArgs
from batchflow.infra.storage import Storage, StorageArgs

__all__ = ["STACK_OUTPUTS", "BatchEnvironment"]

#: The stack outputs, in the order the README documents them.
STACK_OUTPUTS = (
    "batchAccountName",
    "batchAccountEndpoint",
    "poolIds",
    "storageAccountName",
    "storageBlobEndpoint",
    "containers",
    "nodeIdentityResourceId",
    "resourceGroupName",
)


class BatchEnvironment(pulumi.ComponentResource):
    """A stack's resource group, storage, node identity, Batch account, network and pools.

    Usage (what `__main__.py` does): `BatchEnvironment(config.name_prefix, config)`.
    """

    resource_group_name: pulumi.Output[str]
    """The resource group holding everything."""
    storage: Storage
    """The storage account and its containers."""
    identity: NodeIdentity
    """The identity the nodes (and the account, for auto-storage) act as."""
    account: BatchAccount
    """The Batch account."""
    network: Network | None
    """The virtual network, when the stack has one."""
    pools: dict[str, Pool]
    """Pools by logical name."""
    stack_outputs: dict[str, Any]
    """The stack outputs: `STACK_OUTPUTS`, by name."""

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:BatchEnvironment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"managed-by": "pulumi", "batchflow-stack": config.stack, **config.tags}

        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=config.resource_group_name,
            location=config.location,
            tags=tags,
            opts=child,
        )
        rg, location = group.name, group.location

        self.storage = Storage(
            f"{name}st",
            StorageArgs(
                resource_group_name=rg,
                location=location,
                containers=config.containers,
                sku=config.storage_sku,
                shared_key_access=config.storage_shared_key_access,
                soft_delete_days=config.blob_soft_delete_days,
                account_name=config.storage_account_name,
                tags=tags,
            ),
            opts=child,
        )
        self.identity = NodeIdentity(
            f"{name}-nodes",
            NodeIdentityArgs(rg, location, self.storage.account_id, tags),
            opts=child,
        )
        # Batch checks auto-storage access when the account is created; the identity's
        # resource_id resolves only once its role assignment exists, hence the order.
        self.account = BatchAccount(
            name,
            BatchAccountArgs(
                resource_group_name=rg,
                location=location,
                storage_account_id=self.storage.account_id,
                identity_resource_id=self.identity.resource_id,
                authentication_modes=config.authentication_modes,
                public_network_access=config.public_network_access,
                pool_allocation_mode=config.pool_allocation_mode,
                key_vault_id=config.key_vault_id,
                key_vault_url=config.key_vault_url,
                account_name=config.batch_account_name,
                tags=tags,
            ),
            opts=child,
        )
        self.network = None
        if config.network is not None:
            self.network = Network(
                f"{name}-net",
                NetworkArgs(
                    resource_group_name=rg,
                    location=location,
                    address_space=config.network.address_space,
                    subnet_prefix=config.network.subnet_prefix,
                    nat_gateway=config.network.nat_gateway,
                    tags=tags,
                ),
                opts=child,
            )
        self.pools = {
            pool.name: Pool(
                f"{name}-pool-{pool.name}",
                PoolArgs(
                    resource_group_name=rg,
                    account_name=self.account.account_name,
                    config=pool,
                    node_identity_resource_id=self.identity.resource_id,
                    storage_account_name=self.storage.account_name,
                    blob_endpoint=self.storage.blob_endpoint,
                    subnet_id=self.network.subnet_id if self.network else None,
                ),
                opts=child,
            )
            for pool in config.pools
        }

        self.resource_group_name = rg
        self.stack_outputs = {
            "batchAccountName": self.account.account_name,
            "batchAccountEndpoint": self.account.endpoint,
            "poolIds": {logical: pool.pool_id for logical, pool in self.pools.items()},
            "storageAccountName": self.storage.account_name,
            "storageBlobEndpoint": self.storage.blob_endpoint,
            "containers": self.storage.container_names,
            "nodeIdentityResourceId": self.identity.resource_id,
            "resourceGroupName": rg,
        }
        self.register_outputs(self.stack_outputs)
