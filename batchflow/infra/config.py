"""The settings of a batchflow stack: their schema, their defaults and the types they become.

`Pulumi.yaml` declares every top-level setting (`batchflow:<key>`) with its type, default and
description; `SETTINGS` below is the same list, and a test keeps the two identical. A stack
file (`stacks/Pulumi.<stack>.yaml`) overrides any of them. `parse_stack_config` in
`batchflow.infra.parse` turns the raw values into a `StackConfig`, or raises
`StackConfigError` naming the stack, the key and the fix, before any resource exists.

This module imports nothing but the standard library: the CLI and the tests read it
without paying for Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PINNED_SETTINGS",
    "POOL_SETTINGS",
    "SETTINGS",
    "AutoScale",
    "BlobMount",
    "ConfigProblem",
    "ContainerNames",
    "ContainerSettings",
    "FixedScale",
    "ImageReference",
    "NetworkConfig",
    "PoolConfig",
    "ResourceFile",
    "Setting",
    "StackConfig",
    "StackConfigError",
    "StartTask",
    "default_autoscale_formula",
]

SettingType = Literal["string", "integer", "boolean", "array", "object"]

#: The Pulumi project name, hence the namespace of every setting (`batchflow:location`).
PROJECT = "batchflow"


@dataclass(frozen=True)
class Setting:
    """One top-level stack setting, as `Pulumi.yaml` declares it."""

    key: str
    """The key without its namespace (`location` for `batchflow:location`)."""
    type: SettingType
    """The Pulumi config type: string, integer, boolean, array (of strings) or object."""
    default: Any
    """The value a stack gets when its file does not set the key."""
    description: str
    """One sentence for `Pulumi.yaml` and the README."""


SETTINGS: tuple[Setting, ...] = (
    Setting("location", "string", "westeurope", "Azure region of every resource."),
    Setting(
        "namePrefix",
        "string",
        "batchflow",
        "Lowercase letters and digits (2-12) that start the name of every resource.",
    ),
    Setting(
        "resourceGroupName",
        "string",
        "",
        "Name of the resource group to create; empty: '<namePrefix>-rg' plus a random suffix.",
    ),
    Setting("tags", "object", {}, "Extra tags (name: value) on every resource."),
    Setting(
        "storageAccountName",
        "string",
        "",
        "Globally unique storage account name; empty: '<namePrefix>st' plus a random suffix.",
    ),
    Setting(
        "storageSku",
        "string",
        "Standard_LRS",
        "Storage redundancy: Standard_LRS, Standard_ZRS, Standard_GRS, Standard_GZRS, ...",
    ),
    Setting(
        "storageSharedKeyAccess",
        "boolean",
        False,
        "Allow account keys and key-signed SAS on the storage account (Entra ID always works).",
    ),
    Setting(
        "blobSoftDeleteDays",
        "integer",
        7,
        "Days a deleted blob or container can be restored (0 turns soft delete off).",
    ),
    Setting(
        "storageFirewall",
        "boolean",
        False,
        "Deny network access to storage except from the pools' subnets, storageAllowedIpRanges "
        "and trusted Azure services.",
    ),
    Setting(
        "storageAllowedIpRanges",
        "array",
        [],
        "Public IPv4 addresses or CIDR ranges let through the storage firewall (e.g. CI runners).",
    ),
    Setting(
        "protectData",
        "boolean",
        False,
        "Protect the resource group and storage account: Pulumi protect, a CanNotDelete lock, "
        "and pinnedSettings enforced.",
    ),
    Setting(
        "pinnedSettings",
        "object",
        {},
        "With protectData: location, namePrefix, resourceGroupName and storageAccountName as "
        "the protected resources were created.",
    ),
    Setting("inputsContainer", "string", "inputs", "Blob container for task inputs."),
    Setting("outputsContainer", "string", "outputs", "Blob container for task outputs."),
    Setting("logsContainer", "string", "logs", "Blob container for task logs."),
    Setting(
        "batchAccountName",
        "string",
        "",
        "Batch account name (unique in its region); empty: '<namePrefix>' plus a random suffix.",
    ),
    Setting(
        "poolAllocationMode",
        "string",
        "BatchService",
        "BatchService (nodes in Batch's subscriptions) or UserSubscription (in yours).",
    ),
    Setting(
        "keyVaultId",
        "string",
        "",
        "Resource id of the Key Vault a UserSubscription account needs.",
    ),
    Setting(
        "keyVaultUrl",
        "string",
        "",
        "URL (https://<vault>.vault.azure.net/) of the Key Vault a UserSubscription account needs.",
    ),
    Setting(
        "batchAuthenticationModes",
        "array",
        ["AAD"],
        "How clients may authenticate to the Batch account: AAD (Entra ID) and/or SharedKey.",
    ),
    Setting(
        "batchPublicNetworkAccess",
        "boolean",
        True,
        "Reach the Batch account's endpoint from the internet (the CLI needs it without VPN).",
    ),
    Setting(
        "vnetAddressSpace",
        "string",
        "",
        "CIDR of a virtual network to create for the pools (e.g. 10.42.0.0/16); empty: none.",
    ),
    Setting(
        "subnetAddressPrefix",
        "string",
        "",
        "CIDR of the pools' subnet inside vnetAddressSpace (e.g. 10.42.0.0/20).",
    ),
    Setting(
        "natGateway",
        "boolean",
        True,
        "Give the subnet a NAT gateway, the outbound path of nodes without public IPs.",
    ),
    Setting(
        "pools",
        "object",
        {"default": {}},
        "Pools by logical name; each maps pool settings (see the README) to values.",
    ),
)

#: Every key a pool accepts, with what it means (the README's table).
POOL_SETTINGS: Mapping[str, str] = {
    "id": "Batch pool id (default: the logical name): at most 64 letters, digits, '-', '_'.",
    "vmSize": "VM size, e.g. Standard_D2s_v5.",
    "image": "Marketplace image 'publisher:offer:sku[:version]'.",
    "nodeAgentSkuId": "Batch node agent SKU; derived for Canonical Ubuntu images.",
    "taskSlotsPerNode": "Tasks that run at once on a node (1-256).",
    "nodeFillType": "Spread (default) or Pack: how tasks are spread over nodes.",
    "targetDedicatedNodes": "Fixed size: dedicated nodes.",
    "targetSpotNodes": "Fixed size: Spot nodes (Batch's targetLowPriorityNodes).",
    "resizeTimeout": "Fixed size: how long a resize may take (ISO 8601, >= PT5M).",
    "autoScale": "Autoscale: {maxDedicatedNodes, maxSpotNodes} or {formula}, evaluationInterval.",
    "startTask": "{commandLine, resourceFiles, waitForSuccess, maxTaskRetryCount, elevated, "
    "environment}.",
    "container": "{type, images, registries}: images to prefetch, registries the node "
    "identity pulls from.",
    "mounts": "[{container, path, options}]: blob containers mounted through the node identity.",
    "subnet": "'' (none), 'stack' (the subnet this stack creates) or a subnet resource id.",
    "publicIPAddresses": "BatchManaged (default) or NoPublicIPAddresses.",
    "nodeCommunicationMode": "Simplified (default), Default or Classic.",
    "interNodeCommunication": "true to let nodes talk to each other (MPI); limits pool size.",
}

AUTOSCALE_SETTINGS = ("maxDedicatedNodes", "maxSpotNodes", "formula", "evaluationInterval")
START_TASK_SETTINGS = (
    "commandLine",
    "resourceFiles",
    "waitForSuccess",
    "maxTaskRetryCount",
    "elevated",
    "environment",
)
RESOURCE_FILE_SETTINGS = (
    "httpUrl",
    "storageContainerUrl",
    "container",
    "blobPrefix",
    "filePath",
    "fileMode",
)
CONTAINER_SETTINGS = ("type", "images", "registries")
MOUNT_SETTINGS = ("container", "path", "options")

#: The settings a change of which replaces the resource group or the storage account (with
#: their data): a stack with `protectData` pins them in `pinnedSettings`.
PINNED_SETTINGS = ("location", "namePrefix", "resourceGroupName", "storageAccountName")

DEFAULT_IMAGE = "Canonical:ubuntu-24_04-lts:server:latest"
DEFAULT_VM_SIZE = "Standard_D2s_v5"
DEFAULT_EVALUATION_INTERVAL = "PT5M"
DEFAULT_RESIZE_TIMEOUT = "PT15M"
DEFAULT_MAX_DEDICATED_NODES = 2
SUBNET_OF_STACK = "stack"


@dataclass(frozen=True)
class ContainerNames:
    """The blob containers every stack creates, by role."""

    inputs: str
    """Where `batchflow submit` stages task inputs."""
    outputs: str
    """Where tasks upload their outputs."""
    logs: str
    """Where task stdout/stderr and upload logs go."""

    def as_dict(self) -> dict[str, str]:
        """`{"inputs": ..., "outputs": ..., "logs": ...}`: the `containers` stack output."""
        return {"inputs": self.inputs, "outputs": self.outputs, "logs": self.logs}


@dataclass(frozen=True)
class ImageReference:
    """A marketplace image, as `az batch pool create --image` spells it."""

    publisher: str
    offer: str
    sku: str
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


@dataclass(frozen=True)
class FixedScale:
    """A pool that keeps a fixed number of nodes."""

    dedicated_nodes: int
    """Dedicated nodes (full price, never preempted)."""
    spot_nodes: int
    """Spot nodes (discounted, may be preempted; Batch's `targetLowPriorityNodes`)."""
    resize_timeout: str
    """ISO 8601 duration a resize may take before Batch gives up."""


@dataclass(frozen=True)
class AutoScale:
    """A pool whose size an autoscale formula sets."""

    formula: str
    """The formula Batch evaluates every `evaluation_interval`."""
    evaluation_interval: str
    """ISO 8601 duration between evaluations (PT5M to PT168H)."""
    max_dedicated_nodes: int | None
    """Cap on dedicated nodes of the default formula; None for a custom formula."""
    max_spot_nodes: int | None
    """Cap on Spot nodes of the default formula; None for a custom formula."""

    @property
    def custom(self) -> bool:
        """True when the stack wrote its own formula."""
        return self.max_dedicated_nodes is None


@dataclass(frozen=True)
class ResourceFile:
    """A file or blob prefix the start task downloads; exactly one source is set."""

    file_path: str | None
    """Where on the node (relative to the task's working directory)."""
    http_url: str | None = None
    """A public or pre-signed URL (a SAS in a stack file is refused)."""
    storage_container_url: str | None = None
    """A container URL, read through the node identity."""
    container: str | None = None
    """A container of this stack's storage account, read through the node identity."""
    blob_prefix: str | None = None
    """Only blobs whose names start with this (container sources only)."""
    file_mode: str | None = None
    """Octal mode of the file on Linux, e.g. '0755'."""


@dataclass(frozen=True)
class StartTask:
    """What each node runs when it joins the pool."""

    command_line: str
    """Run without a shell, as every Batch command line: write /bin/bash -c '...' for one."""
    resource_files: tuple[ResourceFile, ...] = ()
    """Files downloaded before the command runs."""
    wait_for_success: bool = True
    """Schedule no task on a node until its start task succeeded."""
    max_task_retry_count: int = 1
    """Retries after a failure (-1: unlimited)."""
    elevated: bool = False
    """Run as admin (the pool's auto user), e.g. to install packages."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Environment variables of the start task."""


@dataclass(frozen=True)
class ContainerSettings:
    """Run tasks in containers: the runtime, images to prefetch, registries to pull from."""

    type: str
    """DockerCompatible or CriCompatible."""
    images: tuple[str, ...]
    """Images pulled when a node starts, so the first task does not wait for them."""
    registries: tuple[str, ...]
    """Registry servers (e.g. myacr.azurecr.io) the node identity authenticates to."""


@dataclass(frozen=True)
class BlobMount:
    """A blob container mounted on every node with blobfuse, through the node identity."""

    container: str
    """Container name in this stack's storage account."""
    path: str
    """Mount point under $AZ_BATCH_NODE_MOUNTS_DIR."""
    options: str | None = None
    """Blobfuse options, always with `-o allow_other` (see `node_setup.with_allow_other`)."""


@dataclass(frozen=True)
class PoolConfig:
    """One pool, fully resolved: every default applied, every rule checked."""

    name: str
    """Logical name: the key under `pools` and in the `poolIds` stack output."""
    id: str
    """The Batch pool id jobs name in `poolInfo.poolId`."""
    vm_size: str
    image: ImageReference
    node_agent_sku_id: str
    task_slots_per_node: int
    node_fill_type: str
    scale: FixedScale | AutoScale
    start_task: StartTask | None = None
    container: ContainerSettings | None = None
    mounts: tuple[BlobMount, ...] = ()
    subnet: str = ""
    """'' (Batch-managed networking), 'stack', or a subnet resource id."""
    public_ip_addresses: str = "BatchManaged"
    node_communication_mode: str = "Simplified"
    inter_node_communication: bool = False

    @property
    def uses_spot(self) -> bool:
        """Whether the pool can get Spot nodes."""
        if isinstance(self.scale, FixedScale):
            return self.scale.spot_nodes > 0
        if self.scale.max_spot_nodes is not None:
            return self.scale.max_spot_nodes > 0
        return "$targetlowprioritynodes" in self.scale.formula.lower()


@dataclass(frozen=True)
class NetworkConfig:
    """The virtual network this stack creates for its pools."""

    address_space: str
    subnet_prefix: str
    nat_gateway: bool


@dataclass(frozen=True)
class StackConfig:
    """Everything the Pulumi program needs to know about one stack."""

    stack: str
    location: str
    name_prefix: str
    resource_group_name: str | None
    tags: Mapping[str, str]
    storage_account_name: str | None
    storage_sku: str
    storage_shared_key_access: bool
    blob_soft_delete_days: int
    containers: ContainerNames
    batch_account_name: str | None
    pool_allocation_mode: str
    key_vault_id: str | None
    key_vault_url: str | None
    authentication_modes: tuple[str, ...]
    public_network_access: bool
    network: NetworkConfig | None
    pools: tuple[PoolConfig, ...]
    protect_data: bool = False
    """Pulumi `protect` and a CanNotDelete lock on the resource group and storage account."""
    storage_firewall: bool = False
    """Storage denies network access but from the pools' subnets, the allowed IPs, Azure."""
    storage_allowed_ip_ranges: tuple[str, ...] = ()
    """Public IPv4 addresses or CIDR ranges let through the storage firewall."""
    warnings: tuple[ConfigProblem, ...] = ()
    """Settings Azure may accept and then fail on (shown, never fatal)."""


@dataclass(frozen=True)
class ConfigProblem:
    """One bad setting: which stack, which key, what is wrong and how to fix it."""

    stack: str
    key: str
    """The full key, e.g. `batchflow:pools.render.vmSize`."""
    message: str
    fix: str

    def __str__(self) -> str:
        return f"stack '{self.stack}': {self.key}: {self.message}; fix: {self.fix}"


class StackConfigError(ValueError):
    """A stack's settings are wrong; nothing was created. `problems` lists each one."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        self.stack = first.stack
        self.key = first.key
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def default_autoscale_formula(max_dedicated: int, max_spot: int, slots_per_node: int) -> str:
    """The formula of a pool that sets no `formula`: follow pending tasks, scale to zero.

    `$PendingTasks` counts active and running tasks. Nodes needed = pending tasks divided
    by task slots per node, rounded up (adding `slots - 1` first makes Batch's truncation
    a ceiling). Dedicated nodes are filled first, up to `max_dedicated`; the rest go to
    Spot nodes, up to `max_spot`. With nothing pending the target is zero, and
    `taskcompletion` lets running tasks finish before their node goes.
    """
    nodes = "$nodes = $pending;"
    if slots_per_node > 1:
        nodes = f"$nodes = $pending > 0 ? ($pending + {slots_per_node - 1}) / {slots_per_node} : 0;"
    return "\n".join(
        [
            "$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 5);",
            "$pending = $samples < 70 ? max(0, $PendingTasks.GetSample(1)) : max("
            "$PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));",
            nodes,
            f"$TargetDedicatedNodes = min({max_dedicated}, $nodes);",
            f"$TargetLowPriorityNodes = min({max_spot}, max(0, $nodes - $TargetDedicatedNodes));",
            "$NodeDeallocationOption = taskcompletion;",
        ]
    )
