"""`BatchEnvironment`: everything one stack provisions, and the stack outputs it hands over.

```
BatchEnvironment
├── ResourceGroup   protected with protectData
├── Network         only when the stack sets vnetAddressSpace
├── Storage         StorageV2 account, inputs/outputs/logs containers, firewall, lock
├── ManagedIdentity <prefix>-account: the Batch account's, Blob Data Contributor on storage
├── ManagedIdentity <prefix>-nodes: the pools', Reader on inputs, Contributor on outputs, logs
├── BatchAccount    identity-based auto-storage
└── Pool ...        one per entry of the `pools` setting
```

The stack outputs are the contract the CLI consumes (see the README): names, endpoints
and ids only, never a key or a SAS.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import resources

from batchflow import stack
from batchflow.infra.account import BatchAccount, BatchAccountArgs
from batchflow.infra.config import SUBNET_OF_STACK, StackConfig
from batchflow.infra.identity import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    ManagedIdentity,
    ManagedIdentityArgs,
    RoleGrant,
)
from batchflow.infra.network import Network, NetworkArgs
from batchflow.infra.pool import Pool, PoolArgs
from batchflow.infra.storage import Storage, StorageArgs, StorageFirewall
from batchflow.stack import STACK_OUTPUTS

__all__ = ["STACK_OUTPUTS", "BatchEnvironment"]


class BatchEnvironment(pulumi.ComponentResource):
    """A stack's resource group, storage, node identity, Batch account, network and pools.

    Usage (what `__main__.py` does): `BatchEnvironment(config.name_prefix, config)`.
    """

    resource_group_name: pulumi.Output[str]
    """The resource group holding everything."""
    storage: Storage
    """The storage account and its containers."""
    identity: ManagedIdentity
    """The identity the nodes act as (`nodeIdentityResourceId`)."""
    account_identity: ManagedIdentity
    """The Batch account's identity, for auto-storage; no pool has it."""
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
            opts=pulumi.ResourceOptions(parent=self, protect=config.protect_data),
        )
        rg, location = group.name, group.location

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
                firewall=self._firewall(config),
                protect=config.protect_data,
                tags=tags,
            ),
            opts=child,
        )
        containers = self.storage.container_ids
        self.identity = ManagedIdentity(
            f"{name}-nodes",
            ManagedIdentityArgs(
                rg,
                location,
                [
                    RoleGrant("inputs-reader", STORAGE_BLOB_DATA_READER, containers["inputs"]),
                    RoleGrant(
                        "outputs-writer", STORAGE_BLOB_DATA_CONTRIBUTOR, containers["outputs"]
                    ),
                    RoleGrant("logs-writer", STORAGE_BLOB_DATA_CONTRIBUTOR, containers["logs"]),
                ],
                purpose="pool nodes read inputs, write outputs and logs",
                tags=tags,
            ),
            opts=child,
        )
        self.account_identity = ManagedIdentity(
            f"{name}-account",
            ManagedIdentityArgs(
                rg,
                location,
                [RoleGrant("blob-data", STORAGE_BLOB_DATA_CONTRIBUTOR, self.storage.account_id)],
                purpose="the Batch account reaches its auto-storage",
                tags=tags,
            ),
            opts=child,
        )
        # Batch checks auto-storage access when the account is created; an identity's
        # resource_id resolves only once its role assignments exist, hence the order.
        self.account = BatchAccount(
            name,
            BatchAccountArgs(
                resource_group_name=rg,
                location=location,
                storage_account_id=self.storage.account_id,
                identity_resource_id=self.account_identity.resource_id,
                node_identity_resource_id=self.identity.resource_id,
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
            stack.BATCH_ACCOUNT_NAME: self.account.account_name,
            stack.BATCH_ACCOUNT_ENDPOINT: self.account.endpoint,
            stack.POOL_IDS: {logical: pool.pool_id for logical, pool in self.pools.items()},
            stack.STORAGE_ACCOUNT_NAME: self.storage.account_name,
            stack.STORAGE_BLOB_ENDPOINT: self.storage.blob_endpoint,
            stack.CONTAINERS: self.storage.container_names,
            stack.NODE_IDENTITY_RESOURCE_ID: self.identity.resource_id,
            stack.RESOURCE_GROUP_NAME: rg,
        }
        self.register_outputs(self.stack_outputs)

    def _firewall(self, config: StackConfig) -> StorageFirewall | None:
        """The storage firewall's exceptions: every subnet a pool joins, the allowed IPs."""
        if not config.storage_firewall:
            return None
        subnets: list[pulumi.Input[str]] = []
        if self.network is not None:
            subnets.append(self.network.subnet_id)
        for pool in config.pools:
            if pool.subnet and pool.subnet != SUBNET_OF_STACK and pool.subnet not in subnets:
                subnets.append(pool.subnet)
        return StorageFirewall(subnet_ids=subnets, ip_ranges=config.storage_allowed_ip_ranges)
