"""`Pool`: one Batch pool, built from a validated `PoolConfig`.

Every pool runs as the stack's node identity: resource files from storage containers,
blob mounts and container registries are all reached through it, so no key, SAS token or
registry password is written into the pool.

Day-2 changes. Batch updates a pool's scale settings (autoscale formula, interval, fixed
size), start task, metadata, application packages and certificates whatever its size; every
other property only while the pool has no node, and answers `PropertyCannotBeUpdated`
otherwise (Microsoft's "Update Batch pool properties"). So a change of one of
`REPLACED_ON_CHANGE` is a replace: Pulumi deletes the pool (its nodes and the tasks on them)
and creates it again under the same id, delete first because the id is fixed. A change of
formula, size or start task stays an in-place update.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import batch

from batchflow.infra.config import SUBNET_OF_STACK, AutoScale, PoolConfig, StartTask

__all__ = ["REPLACED_ON_CHANGE", "Pool", "PoolArgs"]

#: Pool inputs Batch changes only on a pool without nodes: a change replaces the pool.
REPLACED_ON_CHANGE = (
    "vmSize",
    "deploymentConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "mountConfiguration",
    "interNodeCommunication",
    "targetNodeCommunicationMode",
    "identity",
)


@dataclass(frozen=True)
class PoolArgs:
    """What a `Pool` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group of the Batch account."""
    account_name: pulumi.Input[str]
    """The Batch account the pool belongs to."""
    config: PoolConfig
    """The pool's settings, validated by `parse_stack_config`."""
    node_identity_resource_id: pulumi.Input[str]
    """User-assigned identity the nodes run as."""
    storage_account_name: pulumi.Input[str]
    """The stack's storage account (blob mounts)."""
    blob_endpoint: pulumi.Input[str]
    """`https://<account>.blob.core.windows.net` (resource files from the stack's containers)."""
    subnet_id: pulumi.Input[str] | None = None
    """Subnet for `subnet: stack`; pools with a subnet id of their own ignore it."""


class Pool(pulumi.ComponentResource):
    """A Batch pool whose nodes act as the node identity.

    Usage: `Pool("bfdev-render", PoolArgs(rg.name, acct.account_name, pool_config, ...))`.
    """

    pool_id: pulumi.Output[str]
    """The Batch pool id (what jobs put in `poolInfo.poolId`)."""

    def __init__(
        self, name: str, args: PoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:Pool", name, None, opts)
        cfg = args.config
        identity = batch.ComputeNodeIdentityReferenceArgs(
            resource_id=args.node_identity_resource_id
        )

        container = None
        if cfg.container is not None:
            container = batch.ContainerConfigurationArgs(
                type=batch.ContainerType(cfg.container.type),
                container_image_names=list(cfg.container.images) or None,
                container_registries=[
                    batch.ContainerRegistryArgs(registry_server=server, identity_reference=identity)
                    for server in cfg.container.registries
                ]
                or None,
            )

        pool = batch.Pool(
            name,
            pool_name=cfg.id,
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            vm_size=cfg.vm_size,
            identity=batch.BatchPoolIdentityArgs(
                type=batch.PoolIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.node_identity_resource_id],
            ),
            deployment_configuration=batch.DeploymentConfigurationArgs(
                virtual_machine_configuration=batch.VirtualMachineConfigurationArgs(
                    image_reference=batch.ImageReferenceArgs(
                        publisher=cfg.image.publisher,
                        offer=cfg.image.offer,
                        sku=cfg.image.sku,
                        version=cfg.image.version,
                    ),
                    node_agent_sku_id=cfg.node_agent_sku_id,
                    container_configuration=container,
                )
            ),
            scale_settings=_scale_settings(cfg),
            task_slots_per_node=cfg.task_slots_per_node,
            task_scheduling_policy=batch.TaskSchedulingPolicyArgs(
                node_fill_type=batch.ComputeNodeFillType(cfg.node_fill_type)
            ),
            start_task=_start_task(cfg.start_task, identity, args.blob_endpoint),
            mount_configuration=[
                batch.MountConfigurationArgs(
                    azure_blob_file_system_configuration=batch.AzureBlobFileSystemConfigurationArgs(
                        account_name=args.storage_account_name,
                        container_name=mount.container,
                        relative_mount_path=mount.path,
                        identity_reference=identity,
                        blobfuse_options=mount.options,
                    )
                )
                for mount in cfg.mounts
            ]
            or None,
            network_configuration=_network_configuration(cfg, args.subnet_id),
            target_node_communication_mode=batch.NodeCommunicationMode(cfg.node_communication_mode),
            inter_node_communication=(
                batch.InterNodeCommunicationState.ENABLED
                if cfg.inter_node_communication
                else batch.InterNodeCommunicationState.DISABLED
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                replace_on_changes=list(REPLACED_ON_CHANGE),
                # The pool id is fixed: the old pool must go before the new one can exist.
                delete_before_replace=True,
            ),
        )
        self.pool_id = pool.name
        self.register_outputs({"poolId": self.pool_id})


def _scale_settings(cfg: PoolConfig) -> batch.ScaleSettingsArgs:
    if isinstance(cfg.scale, AutoScale):
        return batch.ScaleSettingsArgs(
            auto_scale=batch.AutoScaleSettingsArgs(
                formula=cfg.scale.formula, evaluation_interval=cfg.scale.evaluation_interval
            )
        )
    return batch.ScaleSettingsArgs(
        fixed_scale=batch.FixedScaleSettingsArgs(
            target_dedicated_nodes=cfg.scale.dedicated_nodes,
            target_low_priority_nodes=cfg.scale.spot_nodes,
            resize_timeout=cfg.scale.resize_timeout,
        )
    )


def _start_task(
    task: StartTask | None,
    identity: batch.ComputeNodeIdentityReferenceArgs,
    blob_endpoint: pulumi.Input[str],
) -> batch.StartTaskArgs | None:
    if task is None:
        return None
    files = []
    for f in task.resource_files:
        container_url: pulumi.Input[str] | None = f.storage_container_url
        if f.container is not None:
            container_url = pulumi.Output.concat(blob_endpoint, "/", f.container)
        files.append(
            batch.ResourceFileArgs(
                http_url=f.http_url,
                storage_container_url=container_url,
                blob_prefix=f.blob_prefix,
                file_path=f.file_path,
                file_mode=f.file_mode,
                identity_reference=identity if container_url is not None else None,
            )
        )
    return batch.StartTaskArgs(
        command_line=task.command_line,
        resource_files=files or None,
        environment_settings=[
            batch.EnvironmentSettingArgs(name=k, value=v) for k, v in task.environment.items()
        ]
        or None,
        wait_for_success=task.wait_for_success,
        max_task_retry_count=task.max_task_retry_count,
        user_identity=batch.UserIdentityArgs(
            auto_user=batch.AutoUserSpecificationArgs(
                scope=batch.AutoUserScope.POOL,
                elevation_level=(
                    batch.ElevationLevel.ADMIN if task.elevated else batch.ElevationLevel.NON_ADMIN
                ),
            )
        ),
    )


def _network_configuration(
    cfg: PoolConfig, stack_subnet_id: pulumi.Input[str] | None
) -> batch.NetworkConfigurationArgs | None:
    subnet: pulumi.Input[str] | None = None
    if cfg.subnet == SUBNET_OF_STACK:
        if stack_subnet_id is None:
            raise ValueError(f"pool '{cfg.name}' asks for the stack's subnet, which does not exist")
        subnet = stack_subnet_id
    elif cfg.subnet:
        subnet = cfg.subnet
    if subnet is None and cfg.public_ip_addresses == "BatchManaged":
        return None  # Batch-managed networking, nothing to configure
    return batch.NetworkConfigurationArgs(
        subnet_id=subnet,
        dynamic_vnet_assignment_scope=batch.DynamicVNetAssignmentScope.NONE,  # pool, not job
        public_ip_address_configuration=batch.PublicIPAddressConfigurationArgs(
            provision=batch.IPAddressProvisioningType(cfg.public_ip_addresses)
        ),
    )
