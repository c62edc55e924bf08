"""The `pools` setting -> `PoolConfig`s: defaults applied, Batch's rules checked.

Every problem goes to the stack's `Problems`; `parse_stack_config` raises them together.
"""

from __future__ import annotations

import re
from typing import Any

from batchflow.infra.config import (
    AUTOSCALE_SETTINGS,
    CONTAINER_SETTINGS,
    DEFAULT_EVALUATION_INTERVAL,
    DEFAULT_IMAGE,
    DEFAULT_MAX_DEDICATED_NODES,
    DEFAULT_RESIZE_TIMEOUT,
    DEFAULT_VM_SIZE,
    MOUNT_SETTINGS,
    POOL_SETTINGS,
    RESOURCE_FILE_SETTINGS,
    START_TASK_SETTINGS,
    SUBNET_OF_STACK,
    AutoScale,
    BlobMount,
    ContainerNames,
    ContainerSettings,
    FixedScale,
    ImageReference,
    NetworkConfig,
    PoolConfig,
    ResourceFile,
    StartTask,
    default_autoscale_formula,
)
from batchflow.infra.node_setup import (
    apt_waits_for_lock,
    uses_apt,
    with_allow_other,
    with_apt_environment,
)
from batchflow.infra.rules import (
    CONTAINER_TYPES,
    ENV_NAME,
    FILE_MODE,
    IMAGE_PART,
    IMAGE_VERSION,
    NODE_AGENT_SKU,
    NODE_COMMUNICATION_MODES,
    NODE_FILL_TYPES,
    POOL_ID,
    PUBLIC_IP_MODES,
    REGISTRY_SERVER,
    SUBNET_ID,
    VM_SIZE,
    Getter,
    Problems,
    duration_seconds,
    image_is_arm64,
    node_agent_for,
    relative_path_problem,
    vm_size_is_arm64,
    vm_size_vcpus,
)

__all__ = ["parse_pools"]


def parse_pools(
    problems: Problems,
    raw: dict[str, Any],
    network: NetworkConfig | None,
    containers: ContainerNames,
) -> tuple[PoolConfig, ...]:
    """Each pool of the `pools` setting, resolved; problems go to `problems`."""
    if not raw:
        problems.add("pools", "defines no pool", "add one, e.g. pools: {default: {}}")
    pools: list[PoolConfig] = []
    seen: dict[str, str] = {}
    for name, settings in raw.items():
        where = f"pools.{name}"
        if not isinstance(settings, dict):
            problems.add(where, "is not a map of pool settings", "write `name: {vmSize: ...}`")
            continue
        before = len(problems.items)
        pool = _pool(problems, where, name, settings, network, containers)
        if pool is None or len(problems.items) > before:
            continue
        folded = pool.id.lower()
        if folded in seen:
            problems.add(
                f"{where}.id",
                f"pool id '{pool.id}' is also the id of pool '{seen[folded]}' "
                "(Batch compares ids case-insensitively)",
                "give each pool its own id",
            )
            continue
        seen[folded] = name
        pools.append(pool)
    return tuple(pools)


def _pool(
    problems: Problems,
    where: str,
    name: str,
    s: dict[str, Any],
    network: NetworkConfig | None,
    containers: ContainerNames,
) -> PoolConfig | None:
    problems.unknown_keys(where, s, POOL_SETTINGS)
    get = Getter(problems, where, s)

    pool_id = get.text("id", name)
    if not POOL_ID.match(pool_id):
        key = f"{where}.id" if "id" in s else where
        problems.add(
            key,
            f"pool id '{pool_id}' breaks Batch's rule: at most 64 letters, digits, '-' and '_'",
            "rename the pool" + ("" if "id" in s else " or set its id"),
        )

    vm_size = get.text("vmSize", DEFAULT_VM_SIZE)
    if not VM_SIZE.match(vm_size):
        guess = re.sub(r"\s+", "_", vm_size.strip())
        if not guess.lower().startswith(("standard_", "basic_")):
            guess = "Standard_" + guess
        problems.add(
            f"{where}.vmSize",
            f"'{vm_size}' is not an Azure VM size",
            f"use a size name such as 'Standard_D2s_v5' (did you mean '{guess}'?); "
            "`az vm list-sizes -l <location>` lists them",
        )

    image = _image(problems, where, get.text("image", DEFAULT_IMAGE))
    agent = get.text("nodeAgentSkuId", "")
    derived = node_agent_for(image) if image else None
    if agent and not NODE_AGENT_SKU.match(agent):
        problems.add(
            f"{where}.nodeAgentSkuId",
            f"'{agent}' is not a node agent SKU id",
            "use e.g. 'batch.node.ubuntu 24.04' (`az batch pool supported-images list`)",
        )
    elif agent and derived and agent.lower() != derived.lower():
        problems.add(
            f"{where}.nodeAgentSkuId",
            f"'{agent}' does not run image {image}",
            f"use '{derived}', or remove it to have it derived",
        )
    elif not agent and image and not derived:
        problems.add(
            f"{where}.nodeAgentSkuId",
            f"is needed for image {image} (it is derived only for Ubuntu images)",
            "look it up with `az batch pool supported-images list` and set it",
        )

    slots = get.number("taskSlotsPerNode", 1)
    vcpus = vm_size_vcpus(vm_size)
    if not 1 <= slots <= 256:
        problems.add(f"{where}.taskSlotsPerNode", "must be 1 to 256", "use at most 4 per vCPU")
    elif vcpus is not None and slots > 4 * vcpus:
        problems.add(
            f"{where}.taskSlotsPerNode",
            f"{slots} task slots on {vm_size} ({vcpus} vCPUs): Batch allows at most 4 per vCPU",
            f"use at most {4 * vcpus}, or a larger VM size",
        )
    if image is not None and VM_SIZE.match(vm_size):
        _check_architecture(problems, where, vm_size, image, agent or derived or "")
    fill = get.choice("nodeFillType", "Spread", NODE_FILL_TYPES)
    scale = _scale(problems, where, s, get, max(1, slots))
    start_task = _start_task(problems, f"{where}.startTask", s.get("startTask"), containers)
    container = _container(problems, f"{where}.container", s.get("container"))
    mounts = _mounts(problems, f"{where}.mounts", s.get("mounts"), containers)
    if len(mounts) > 1 and (agent or derived or "").lower().startswith("batch.node.ubuntu 24.04"):
        problems.warn(
            f"{where}.mounts",
            f"{len(mounts)} blob mounts on Ubuntu 24.04: a second mount has been reported "
            "failing there (Azure/Batch#190, open)",
            "mount one container and read the others with resource files, or check a node "
            "of the pool before relying on it",
        )

    subnet = get.text("subnet", "")
    if subnet == SUBNET_OF_STACK and network is None:
        problems.add(
            f"{where}.subnet",
            "is 'stack', but this stack creates no virtual network",
            "set vnetAddressSpace and subnetAddressPrefix, or give a subnet resource id",
        )
    elif subnet and subnet != SUBNET_OF_STACK and not SUBNET_ID.match(subnet):
        problems.add(
            f"{where}.subnet",
            f"'{subnet}' is not a subnet resource id",
            "use /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/"
            "virtualNetworks/<vnet>/subnets/<subnet>, or 'stack'",
        )
    public_ips = get.choice("publicIPAddresses", "BatchManaged", PUBLIC_IP_MODES)
    mode = get.choice("nodeCommunicationMode", "Simplified", NODE_COMMUNICATION_MODES)
    if public_ips == "NoPublicIPAddresses":
        if not subnet:
            problems.add(
                f"{where}.publicIPAddresses",
                "NoPublicIPAddresses needs the pool in a virtual network",
                "set subnet to 'stack' (with vnetAddressSpace) or to a subnet resource id",
            )
        if mode != "Simplified":
            problems.add(
                f"{where}.nodeCommunicationMode",
                f"is {mode}, but pools without public IPs need Simplified",
                "set nodeCommunicationMode to Simplified",
            )
        if subnet == SUBNET_OF_STACK and network is not None and not network.nat_gateway:
            problems.add(
                "natGateway",
                f"is false, so the nodes of pool '{name}' (no public IPs) have no way out "
                "to Batch's node management endpoint",
                "set natGateway to true",
            )
    inter_node = get.flag("interNodeCommunication", False)

    if image is None:
        return None
    return PoolConfig(
        name=name,
        id=pool_id,
        vm_size=vm_size,
        image=image,
        node_agent_sku_id=agent or derived or "",
        task_slots_per_node=slots,
        node_fill_type=fill,
        scale=scale,
        start_task=start_task,
        container=container,
        mounts=mounts,
        subnet=subnet,
        public_ip_addresses=public_ips,
        node_communication_mode=mode,
        inter_node_communication=inter_node,
    )


def _check_architecture(
    problems: Problems, where: str, vm_size: str, image: ImageReference, agent: str
) -> None:
    size_arm = vm_size_is_arm64(vm_size)
    image_arm = image_is_arm64(image, agent)
    if size_arm is None or size_arm == image_arm:
        return
    if image_arm:
        message = f"image {image} is built for Arm64, but {vm_size} has x64 processors"
        fix = "use an Arm64 size (a 'p' size such as Standard_D2ps_v5), or an x64 image " + (
            f"such as '{DEFAULT_IMAGE}'"
        )
    else:
        message = f"image {image} is built for x64, but {vm_size} has Arm64 processors"
        fix = (
            "use an Arm64 image such as 'Canonical:ubuntu-24_04-lts:server-arm64', "
            "or an x64 size such as Standard_D2s_v5"
        )
    problems.add(f"{where}.image", message, fix)


def _image(problems: Problems, where: str, urn: str) -> ImageReference | None:
    parts = urn.split(":")
    if len(parts) in (3, 4) and all(IMAGE_PART.match(p) for p in parts[:3]):
        version = parts[3] if len(parts) == 4 else "latest"
        if IMAGE_VERSION.match(version):
            return ImageReference(parts[0], parts[1], parts[2], version)
    problems.add(
        f"{where}.image",
        f"'{urn}' is not a marketplace image 'publisher:offer:sku[:version]'",
        f"use e.g. '{DEFAULT_IMAGE}' (`az batch pool supported-images list`)",
    )
    return None


def _scale(
    problems: Problems, where: str, s: dict[str, Any], get: Getter, slots: int
) -> FixedScale | AutoScale:
    fixed_keys = [k for k in ("targetDedicatedNodes", "targetSpotNodes", "resizeTimeout") if k in s]
    if "autoScale" in s and fixed_keys:
        problems.add(
            where,
            f"sets both autoScale and a fixed size ({', '.join(fixed_keys)})",
            f"keep one: remove {', '.join(fixed_keys)} to autoscale, or remove autoScale",
        )
    if fixed_keys and "autoScale" not in s:
        dedicated = get.number("targetDedicatedNodes", 0)
        spot = get.number("targetSpotNodes", 0)
        for key, value in (("targetDedicatedNodes", dedicated), ("targetSpotNodes", spot)):
            if value < 0:
                problems.add(f"{where}.{key}", "is negative", "use 0 or more")
        timeout = get.text("resizeTimeout", DEFAULT_RESIZE_TIMEOUT)
        seconds = duration_seconds(timeout)
        if seconds is None or seconds < 300:
            problems.add(
                f"{where}.resizeTimeout",
                f"'{timeout}' is not an ISO 8601 duration of at least 5 minutes",
                "use e.g. PT15M",
            )
        return FixedScale(dedicated, spot, timeout)

    raw = s.get("autoScale", {})
    key = f"{where}.autoScale"
    if not isinstance(raw, dict):
        problems.add(key, "is not a map", "write autoScale: {maxSpotNodes: 4}")
        raw = {}
    problems.unknown_keys(key, raw, AUTOSCALE_SETTINGS)
    auto = Getter(problems, key, raw)
    interval = auto.text("evaluationInterval", DEFAULT_EVALUATION_INTERVAL)
    seconds = duration_seconds(interval)
    if seconds is None or not 300 <= seconds <= 168 * 3600:
        problems.add(
            f"{key}.evaluationInterval",
            f"'{interval}' is not an ISO 8601 duration from PT5M to PT168H",
            "use e.g. PT5M",
        )
    if "formula" in raw:
        formula = auto.text("formula", "").strip()
        caps = [k for k in ("maxDedicatedNodes", "maxSpotNodes") if k in raw]
        if caps:
            problems.add(
                key,
                f"sets both formula and {', '.join(caps)}, which only shape the default formula",
                "put the caps in your formula, or remove formula to use the default",
            )
        if not re.search(r"\$Target(Dedicated|LowPriority)Nodes\s*=", formula, re.IGNORECASE):
            problems.add(
                f"{key}.formula",
                "never assigns $TargetDedicatedNodes or $TargetLowPriorityNodes, "
                "so the pool would never get a node",
                "assign at least one of them",
            )
        return AutoScale(formula, interval, None, None)
    # A pool that names only Spot nodes gets no dedicated ones by surprise.
    default_dedicated = 0 if "maxSpotNodes" in raw else DEFAULT_MAX_DEDICATED_NODES
    dedicated = auto.number("maxDedicatedNodes", default_dedicated)
    spot = auto.number("maxSpotNodes", 0)
    if dedicated < 0 or spot < 0 or dedicated + spot == 0:
        problems.add(
            key,
            "allows no node (maxDedicatedNodes + maxSpotNodes must be at least 1, none negative)",
            "raise maxDedicatedNodes or maxSpotNodes",
        )
    formula = default_autoscale_formula(max(dedicated, 0), max(spot, 0), slots)
    return AutoScale(formula, interval, dedicated, spot)


def _start_task(
    problems: Problems, where: str, raw: Any, containers: ContainerNames
) -> StartTask | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(where, "is not a map", "write startTask: {commandLine: ...}")
        return None
    problems.unknown_keys(where, raw, START_TASK_SETTINGS)
    get = Getter(problems, where, raw)
    command = get.text("commandLine", "")
    if not command.strip() and isinstance(raw.get("commandLine", ""), str):  # not: said above
        problems.add(
            f"{where}.commandLine",
            "is missing",
            "set the command each node runs, e.g. /bin/bash -c 'apt-get install -y ffmpeg'",
        )
    files = tuple(
        f
        for i, item in enumerate(get.items("resourceFiles"))
        if (f := _resource_file(problems, f"{where}.resourceFiles[{i}]", item, containers))
    )
    environment = get.mapping("environment")
    for name, value in environment.items():
        if not ENV_NAME.match(name):
            problems.add(f"{where}.environment.{name}", "is not a variable name", "use A-Z, 0-9, _")
        if not isinstance(value, str | int | float | bool):
            problems.add(
                f"{where}.environment.{name}",
                f"{value!r} is not a plain value",
                "give the variable a text, number or true/false value",
            )
    retries = get.number("maxTaskRetryCount", 1)
    if retries < -1:
        problems.add(f"{where}.maxTaskRetryCount", "must be -1 or more", "use -1 for unlimited")
    variables = {
        k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in environment.items()
    }
    elevated = get.flag("elevated", False)
    if uses_apt(command) and not elevated:
        problems.add(
            f"{where}.elevated",
            "is false, but the command line runs apt, which needs root",
            "set elevated: true",
        )
    if uses_apt(command):
        # A fresh node's unattended-upgrades holds the dpkg lock: wait for it, ask nothing.
        command = apt_waits_for_lock(command)
        variables = with_apt_environment(variables)
    return StartTask(
        command_line=command,
        resource_files=files,
        wait_for_success=get.flag("waitForSuccess", True),
        max_task_retry_count=retries,
        elevated=elevated,
        environment=variables,
    )


def _resource_file(
    problems: Problems, where: str, raw: Any, containers: ContainerNames
) -> ResourceFile | None:
    if not isinstance(raw, dict):
        problems.add(where, "is not a map", "write {httpUrl: ..., filePath: ...}")
        return None
    problems.unknown_keys(where, raw, RESOURCE_FILE_SETTINGS)
    get = Getter(problems, where, raw)
    sources = [k for k in ("httpUrl", "storageContainerUrl", "container") if k in raw]
    if len(sources) != 1:
        problems.add(
            where,
            f"has {len(sources)} sources ({', '.join(sources) or 'none'})",
            "give exactly one of httpUrl, storageContainerUrl, container",
        )
    http_url = get.text("httpUrl", "") or None
    container_url = get.text("storageContainerUrl", "") or None
    url = http_url or container_url or ""
    if re.search(r"[?&]sig=", url, re.IGNORECASE):
        problems.add(
            where,
            "carries a SAS signature, a secret that would live in git",
            "use storageContainerUrl or container: nodes read them through their identity",
        )
    container = get.text("container", "") or None
    if container is not None and container not in containers.as_dict().values():
        problems.add(
            f"{where}.container",
            f"'{container}' is not one of this stack's containers",
            f"use one of {', '.join(containers.as_dict().values())}",
        )
    file_path = get.text("filePath", "") or None
    if file_path is None and "httpUrl" in raw:
        problems.add(f"{where}.filePath", "is needed with httpUrl", "name the file on the node")
    if file_path and (reason := relative_path_problem(file_path)):
        problems.add(f"{where}.filePath", f"'{file_path}' {reason}", "use a relative path")
    mode = get.text("fileMode", "") or None
    if mode is not None and not FILE_MODE.match(mode):
        problems.add(f"{where}.fileMode", f"'{mode}' is not an octal mode", "use e.g. '0755'")
    return ResourceFile(
        file_path=file_path,
        http_url=http_url,
        storage_container_url=container_url,
        container=container,
        blob_prefix=get.text("blobPrefix", "") or None,
        file_mode=mode,
    )


def _container(problems: Problems, where: str, raw: Any) -> ContainerSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(where, "is not a map", "write container: {images: [...], registries: [...]}")
        return None
    problems.unknown_keys(where, raw, CONTAINER_SETTINGS)
    get = Getter(problems, where, raw)
    kind = get.choice("type", "DockerCompatible", CONTAINER_TYPES)
    images = tuple(get.items("images"))
    for image in images:
        if not isinstance(image, str) or not image or any(c.isspace() for c in image):
            problems.add(
                f"{where}.images", f"{image!r} is not an image name", "use e.g. ubuntu:24.04"
            )
    registries = tuple(get.items("registries"))
    for server in registries:
        if not isinstance(server, str) or not REGISTRY_SERVER.match(server):
            problems.add(
                f"{where}.registries",
                f"{server!r} is not a registry server name",
                "use the login server, e.g. myregistry.azurecr.io",
            )
    return ContainerSettings(kind, images, registries)


def _mounts(
    problems: Problems, where: str, raw: Any, containers: ContainerNames
) -> tuple[BlobMount, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(where, "is not a list", "write mounts: [{container: inputs, path: inputs}]")
        return ()
    mounts: list[BlobMount] = []
    for i, item in enumerate(raw):
        key = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.add(key, "is not a map", "write {container: inputs, path: inputs}")
            continue
        problems.unknown_keys(key, item, MOUNT_SETTINGS)
        get = Getter(problems, key, item)
        container = get.text("container", "")
        if container not in containers.as_dict().values():
            problems.add(
                f"{key}.container",
                f"'{container}' is not one of this stack's containers",
                f"use one of {', '.join(containers.as_dict().values())}",
            )
        path = get.text("path", container)
        if reason := relative_path_problem(path):
            problems.add(f"{key}.path", f"'{path}' {reason}", "use a name like 'inputs'")
        # Root mounts it; non-admin tasks read it only with allow_other.
        mounts.append(BlobMount(container, path, with_allow_other(get.text("options", ""))))
    return tuple(mounts)
