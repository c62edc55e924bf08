"""`batchflow infra plan`: what `pulumi up` would create for a stack, worked out offline.

The stack's settings are read the way the Pulumi CLI reads them (the stack file in
`stackConfigDir` over the defaults in `Pulumi.yaml`) and validated first, so bad settings
fail before anything runs. Then the real program, `__main__.py`, runs under
`AzureMocks`: no Pulumi CLI, no provider plugin, no cloud login. The plan lists every
resource with its key settings and full inputs, the stack outputs, what the settings leave
open and what no offline plan can check. Ids, random name suffixes and endpoints in it come
from the mocks (subscription 00000000-...).
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; Pulumi brings it

from batchflow.infra.config import PROJECT, StackConfig
from batchflow.infra.mocks import MOCK_SUBSCRIPTION, RecordedResource, run_under_mocks
from batchflow.infra.parse import parse_stack_config
from batchflow.infra.rules import vm_size_vcpus
from batchflow.infra.summary import settings_of

__all__ = [
    "NOT_CHECKED",
    "Plan",
    "PlanError",
    "PlannedResource",
    "StackSettings",
    "find_project_dir",
    "left_open",
    "load_stack_settings",
    "not_checked",
    "plan_stack",
]

SECRET_PLACEHOLDER = "[secret]"


class PlanError(ValueError):
    """The project or stack file cannot be found or read."""


@dataclass(frozen=True)
class StackSettings:
    """A stack's config as the Pulumi CLI would hand it to the program."""

    stack: str
    project_dir: Path
    stack_file: Path
    values: dict[str, Any]
    """Full keys (`batchflow:pools`) to values, the stack file over `Pulumi.yaml`'s defaults."""
    secret_keys: tuple[str, ...]
    """Keys whose values are encrypted in the stack file (shown as `[secret]`)."""

    def pulumi_strings(self) -> dict[str, str]:
        """The values in Pulumi's wire form: strings, JSON for maps and lists."""
        return {key: _as_pulumi_string(value) for key, value in self.values.items()}

    def project_settings(self) -> dict[str, Any]:
        """The `batchflow:` settings, keyed without their namespace."""
        prefix = f"{PROJECT}:"
        return {k.removeprefix(prefix): v for k, v in self.values.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class PlannedResource:
    """One resource the stack would have."""

    type: str
    name: str
    parent: str | None
    """`type::name` of the parent component (None at the top)."""
    depth: int
    """How deep in the component tree (0: under the stack)."""
    custom: bool
    """True for an Azure resource, False for a batchflow component."""
    settings: dict[str, Any]
    """The settings a reviewer checks (SKU, TLS, scale, subnet, ...)."""
    inputs: dict[str, Any]
    """Every input the provider would receive."""
    protect: bool = False
    """Pulumi-protected: `pulumi up` refuses to delete or replace it."""
    replace_on_changes: tuple[str, ...] = ()
    """Inputs whose change replaces it (the rest update in place)."""


@dataclass(frozen=True)
class Plan:
    """What `pulumi up --stack <stack>` would create, and the outputs it would export."""

    stack: str
    stack_file: Path
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    secret_outputs: tuple[str, ...] = ()
    """Outputs Pulumi would store encrypted; batchflow's contract has none."""
    warnings: tuple[str, ...] = ()
    """Settings Azure may accept and then fail on, one line each."""
    not_checked: tuple[str, ...] = ()
    """What an offline plan cannot know, one line each."""
    left_open: tuple[str, ...] = ()
    """What the stack's settings leave open (a dev stack's shortcuts), one line each."""

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON data (`--output json`)."""
        return {
            "stack": self.stack,
            "stackFile": str(self.stack_file),
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent,
                    "settings": r.settings,
                    "inputs": _sorted_keys(r.inputs),
                    "protect": r.protect,
                    "replaceOnChanges": list(r.replace_on_changes),
                }
                for r in self.resources
            ],
            "outputs": self.outputs,  # in the contract's documented order
            "secretOutputs": list(self.secret_outputs),
            "warnings": list(self.warnings),
            "notChecked": list(self.not_checked),
            "leftOpen": list(self.left_open),
            "note": f"ids, name suffixes and endpoints come from mocks (subscription "
            f"{MOCK_SUBSCRIPTION}); Azure assigns the real ones",
        }


def find_project_dir(start: Path) -> Path:
    """The nearest directory at or above `start` whose `Pulumi.yaml` is batchflow's."""
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / "Pulumi.yaml"
        if candidate.is_file() and _read_yaml(candidate).get("name") == PROJECT:
            return directory
    raise PlanError(
        f"no Pulumi.yaml of project '{PROJECT}' in {start} or above it; run this in the "
        "batchflow repository or pass --project-dir"
    )


def load_stack_settings(project_dir: Path, stack: str) -> StackSettings:
    """Read a stack's settings the way the Pulumi CLI does (stack file over defaults)."""
    project = _read_yaml(project_dir / "Pulumi.yaml")
    config_dir = project_dir / str(project.get("stackConfigDir") or ".")
    stack_file = config_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in config_dir.glob("Pulumi.*.yaml")
        )
        raise PlanError(
            f"stack '{stack}' has no file {stack_file} (stacks: {', '.join(known) or 'none'}); "
            f"pick one of those, or write that file (`pulumi stack init {stack}` and "
            "`pulumi config set ...` do)"
        )
    values: dict[str, Any] = {}
    for key, declared in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(declared, dict) and "type" in declared:
            if "default" in declared:
                values[full] = declared["default"]
        elif isinstance(declared, dict) and "value" in declared:
            values[full] = declared["value"]
        else:
            values[full] = declared
    secret_keys: list[str] = []
    stack_config = _read_yaml(stack_file).get("config") or {}
    if not isinstance(stack_config, dict):
        raise PlanError(f"{stack_file}: 'config' is not a map of settings")
    for name, value in stack_config.items():
        key = str(name)  # YAML may give a number; Pulumi's keys are text
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(full)
            value = SECRET_PLACEHOLDER
        values[full] = value
    return StackSettings(stack, project_dir, stack_file, values, tuple(secret_keys))


def plan_stack(stack: str, project_dir: Path) -> Plan:
    """Validate the stack's settings, then run `__main__.py` under mocks and list the result.

    Raises `StackConfigError` (bad settings; nothing ran) or `PlanError` (missing files).
    """
    settings = load_stack_settings(project_dir, stack)
    config = parse_stack_config(stack, settings.project_settings())  # fail before any resource
    program = project_dir / "__main__.py"
    if not program.is_file():
        raise PlanError(f"{program} is missing: the Pulumi program is not there")

    def run() -> None:
        runpy.run_path(str(program), run_name="__main__")

    result = run_under_mocks(
        run,
        stack=stack,
        config=settings.pulumi_strings(),
        secret_keys=settings.secret_keys,
        project=PROJECT,
    )
    by_urn = {r.urn: r for r in result.resources}
    planned = [
        PlannedResource(
            type=r.type,
            name=r.name,
            parent=_label(by_urn[r.parent]) if r.parent and r.parent in by_urn else None,
            depth=_depth(r, by_urn),
            custom=r.custom,
            settings=settings_of(r.type, _plain(r.inputs)) if r.custom else {},
            inputs=_plain(r.inputs),
            protect=r.protect,
            replace_on_changes=r.replace_on_changes,
        )
        for r in _tree_order(result.resources)
    ]
    return Plan(
        stack,
        settings.stack_file,
        planned,
        _plain(result.outputs),
        tuple(sorted(result.secret_outputs)),
        warnings=tuple(str(w) for w in config.warnings),
        not_checked=not_checked(config),
        left_open=left_open(config),
    )


#: What no offline plan can know, whatever the stack.
NOT_CHECKED = (
    "Azure-side quotas: Batch accounts per region, dedicated and Spot cores per VM family, "
    "pools per account; a quota of 0 means no node ever (README: Preflight)",
    "replacements of existing resources: this plan starts from an empty stack; "
    "`pulumi preview --diff` compares with what is deployed",
    "whether the VM sizes, images and node agents are offered in the region "
    "(`az batch location list-skus`, `az batch pool supported-images list`)",
    "whether the deploying identity may create role assignments and locks (README: Preflight)",
)


def not_checked(config: StackConfig) -> tuple[str, ...]:
    """`NOT_CHECKED`, plus the pools whose task slots could not be checked."""
    unknown = [
        f"taskSlotsPerNode of pool '{pool.name}': the vCPUs of {pool.vm_size} are not in its name"
        for pool in config.pools
        if pool.task_slots_per_node > 1 and vm_size_vcpus(pool.vm_size) is None
    ]
    return (*NOT_CHECKED, *unknown)


class _PulumiYamlLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs
    """YAML as the Pulumi CLI reads it: `2024-01-01` stays text, not a date."""


_PulumiYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def left_open(config: StackConfig) -> tuple[str, ...]:
    """What the stack's settings leave open, one line each, so a reviewer sees it plainly."""
    lines: list[str] = []
    if not config.storage_firewall:
        lines.append(
            "storage accepts connections from every network (storageFirewall: false); "
            "a caller still needs Entra ID or a key"
        )
    if config.storage_shared_key_access:
        lines.append(
            "storage accepts account keys and SAS signed with them (storageSharedKeyAccess: true)"
        )
    if "SharedKey" in config.authentication_modes:
        lines.append("the Batch account accepts shared keys (batchAuthenticationModes: SharedKey)")
    if config.public_network_access:
        lines.append(
            "the Batch account's endpoint is reachable from the internet "
            "(batchPublicNetworkAccess: true)"
        )
    public = [pool.name for pool in config.pools if pool.public_ip_addresses == "BatchManaged"]
    if public:
        names = ", ".join(f"'{name}'" for name in public)
        lines.append(
            f"nodes of pool {names} have public IP addresses (publicIPAddresses: BatchManaged)"
        )
    if not config.protect_data:
        lines.append(
            "the data is neither protected nor locked (protectData: false): `pulumi destroy` "
            "deletes it with the storage account"
        )
    return tuple(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_PulumiYamlLoader)
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise PlanError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlanError(f"{path}: expected a YAML map at the top")
    return data


def _as_pulumi_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _sorted_keys(value: Any) -> Any:
    """`value` with the keys of every map in sorted order: the provider's inputs arrive in
    no fixed order, and a pipeline diffs the JSON from run to run."""
    if isinstance(value, Mapping):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_keys(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Protobuf numbers come back as floats: 1.0 -> 1, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _label(resource: RecordedResource) -> str:
    return f"{resource.type}::{resource.name}"


def _depth(resource: RecordedResource, by_urn: Mapping[str, RecordedResource]) -> int:
    depth, parent = 0, resource.parent
    while parent is not None and parent in by_urn:
        depth, parent = depth + 1, by_urn[parent].parent
    return depth


#: Siblings are listed in this order (then by name), so a plan reads the same every run:
#: the engine registers resources in whatever order their inputs resolve.
_TYPE_ORDER = (
    "batchflow:azure:BatchEnvironment",
    "azure-native:resources:ResourceGroup",
    "batchflow:azure:Network",
    "azure-native:network:VirtualNetwork",
    "azure-native:network:PublicIPAddress",
    "azure-native:network:NatGateway",
    "azure-native:network:Subnet",
    "batchflow:azure:Storage",
    "azure-native:storage:StorageAccount",
    "azure-native:storage:BlobServiceProperties",
    "azure-native:storage:BlobContainer",
    "azure-native:authorization:ManagementLockByScope",
    "batchflow:azure:ManagedIdentity",
    "azure-native:managedidentity:UserAssignedIdentity",
    "azure-native:authorization:RoleAssignment",
    "batchflow:azure:BatchAccount",
    "azure-native:batch:BatchAccount",
    "batchflow:azure:Pool",
    "azure-native:batch:Pool",
)


def _sort_key(resource: RecordedResource) -> tuple[int, str]:
    rank = _TYPE_ORDER.index(resource.type) if resource.type in _TYPE_ORDER else len(_TYPE_ORDER)
    return rank, resource.name


def _tree_order(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Each component followed by its children (depth first), siblings in a fixed order."""
    children: dict[str | None, list[RecordedResource]] = {}
    urns = {r.urn for r in resources}
    for r in resources:
        children.setdefault(r.parent if r.parent in urns else None, []).append(r)
    ordered: list[RecordedResource] = []

    def visit(parent: str | None) -> None:
        for child in sorted(children.get(parent, []), key=_sort_key):
            ordered.append(child)
            visit(child.urn)

    visit(None)
    return ordered
