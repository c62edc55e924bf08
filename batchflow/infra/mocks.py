"""Run a Pulumi program under mocks: no Pulumi CLI, no provider plugin, no cloud.

`run_under_mocks(program, stack=..., config=...)` installs fresh mocks, runs `program` in
its own event loop, and returns every resource it declared (type, name, parent, the
inputs it was given, what the mocks made of them), what it logged (`pulumi.log.warn`, which
`pulumi up` shows; the mocks keep it instead of printing it) and its outputs, resolved. An output or
input that is still unknown raises `UnknownOutputError`: a test or plan never silently
skips what it could not see. Everything is reset afterwards, so runs do not leak into
each other.

`AzureMocks` answers like Azure would for the resource types batchflow declares: ARM
resource ids under subscription `00000000-0000-0000-0000-000000000000`, a random-looking
but deterministic suffix on auto-named resources, account endpoints, identity ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func

__all__ = [
    "MOCK_SUBSCRIPTION",
    "AzureMocks",
    "MockRun",
    "RecordedResource",
    "UnknownOutputError",
    "run_under_mocks",
]

MOCK_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# type token -> (ARM path under the resource group, input holding the physical name)
_ARM_PATHS: Mapping[str, tuple[str, str]] = {
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts/{}", "accountName"),
    "azure-native:storage:BlobServiceProperties": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/{}",
        "blobServicesName",
    ),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/{}",
        "containerName",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/{}",
        "resourceName",
    ),
    "azure-native:batch:BatchAccount": ("Microsoft.Batch/batchAccounts/{}", "accountName"),
    "azure-native:batch:Pool": ("Microsoft.Batch/batchAccounts/{accountName}/pools/{}", "poolName"),
    "azure-native:network:VirtualNetwork": (
        "Microsoft.Network/virtualNetworks/{}",
        "virtualNetworkName",
    ),
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{}",
        "subnetName",
    ),
    "azure-native:network:NatGateway": ("Microsoft.Network/natGateways/{}", "natGatewayName"),
    "azure-native:network:PublicIPAddress": (
        "Microsoft.Network/publicIPAddresses/{}",
        "publicIpAddressName",
    ),
}


# extension resources: type token -> (ARM collection under their scope, input holding the name)
_SCOPED: Mapping[str, tuple[str, str]] = {
    "azure-native:authorization:RoleAssignment": ("roleAssignments", "roleAssignmentName"),
    "azure-native:authorization:ManagementLockByScope": ("locks", "lockName"),
}


class UnknownOutputError(AssertionError):
    """An output or input had no known value under the mocks, so nothing could check it."""


@dataclass(frozen=True)
class RecordedResource:
    """One resource the program declared, as the engine saw it."""

    urn: str
    type: str
    """Type token, e.g. `azure-native:batch:Pool` or `batchflow:azure:Pool`."""
    name: str
    """Logical (Pulumi) name."""
    parent: str | None
    """URN of the parent resource (the stack's root for top-level resources)."""
    custom: bool
    """True for cloud resources, False for components."""
    inputs: dict[str, Any]
    """The inputs, with Azure's wire names (camelCase), as the provider would receive them."""
    state: dict[str, Any]
    """What the mocks answered: the inputs plus computed properties (id, name, endpoints)."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource waits for (explicit and through its inputs)."""
    protect: bool = False
    """Pulumi's `protect`: a preview that would delete or replace it fails."""
    replace_on_changes: tuple[str, ...] = ()
    """Inputs whose change replaces the resource instead of updating it."""
    delete_before_replace: bool = False
    """On a replace, the old resource goes before the new one is created."""


@dataclass(frozen=True)
class MockRun:
    """Everything a program did under the mocks."""

    resources: list[RecordedResource]
    outputs: dict[str, Any]
    """Stack exports and the values the program returned, resolved to plain data."""
    secret_outputs: frozenset[str] = field(default_factory=frozenset)
    """Names of outputs that Pulumi marks secret."""
    log: tuple[tuple[str, str], ...] = ()
    """What the program logged through `pulumi.log` (info and up), as (level, message)."""

    def of_type(self, type_token: str) -> list[RecordedResource]:
        """The resources of one type, in declaration order."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        """The only resource of `type_token` (fails when there are none or several)."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource | None:
        """The resource with this URN, if the program declared it."""
        return next((r for r in self.resources if r.urn == urn), None)


def _suffix(*parts: str) -> str:
    return hashlib.sha256("::".join(parts).encode()).hexdigest()[:8]


class AzureMocks(pulumi.runtime.Mocks):
    """Answers resource registrations as Azure would: ids, auto-names, computed properties."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        """The id and state of a new resource: its inputs plus what Azure computes."""
        state = dict(args.inputs)
        if not args.custom:
            return None, state
        typ, inputs = args.typ, args.inputs
        if typ == "azure-native:resources:ResourceGroup":
            name = inputs.get("resourceGroupName") or f"{args.name}{_suffix(typ, args.name)}"
            rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{name}"
        elif typ in _SCOPED:
            name = inputs.get(_SCOPED[typ][1]) or str(uuid.uuid5(uuid.NAMESPACE_URL, args.name))
            scope = inputs.get("scope", "")
            rid = f"{scope}/providers/Microsoft.Authorization/{_SCOPED[typ][0]}/{name}"
        else:
            path, name_key = _ARM_PATHS.get(typ, ("Unknown/{}", "name"))
            name = inputs.get(name_key) or f"{args.name}{_suffix(typ, args.name)}"
            group = inputs.get("resourceGroupName", "")
            rid = (
                f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/"
                + path.format(name, **{k: v for k, v in inputs.items() if isinstance(v, str)})
            )
        state.update(name=name, id=rid)
        state.update(_computed(typ, name, inputs, args.name))
        identity = state.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Azure takes a list of identity ids and answers a map of id -> principal.
            identity = dict(identity)
            identity["userAssignedIdentities"] = {
                ident: {
                    "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal{ident}")),
                    "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"client{ident}")),
                }
                for ident in identity["userAssignedIdentities"]
            }
            state["identity"] = identity
        return rid, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """batchflow's program invokes no functions; an invoke is a bug, so say which."""
        raise NotImplementedError(f"the mocks do not answer invoke {args.token}")


def _computed(typ: str, name: str, inputs: Mapping[str, Any], logical: str) -> dict[str, Any]:
    """Properties Azure computes for a new resource of type `typ`."""
    if typ == "azure-native:storage:StorageAccount":
        return {
            "primaryEndpoints": {
                service: f"https://{name}.{service}.core.windows.net/"
                for service in ("blob", "dfs", "file", "queue", "table", "web")
            }
        }
    if typ == "azure-native:managedidentity:UserAssignedIdentity":
        return {
            "principalId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"principal.{logical}")),
            "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"client.{logical}")),
            "tenantId": MOCK_SUBSCRIPTION,
        }
    if typ == "azure-native:batch:BatchAccount":
        location = str(inputs.get("location") or "westeurope").replace(" ", "").lower()
        return {"accountEndpoint": f"{name}.{location}.batch.azure.com"}
    if typ == "azure-native:network:PublicIPAddress":
        return {"ipAddress": "203.0.113.10"}  # TEST-NET-3: documentation addresses
    return {}


class _RecordingMonitor(MockMonitor):
    """A mock engine monitor that also keeps each registration's parent and dependencies."""

    def __init__(self, mocks: AzureMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.unknown_inputs: list[str] = []

    def RegisterResource(self, request: Any) -> Any:
        """Register as the mock monitor does, and record what was registered."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        if _has_unknown(inputs):
            self.unknown_inputs.append(response.urn)
        state = self.resources[response.urn].state if response.urn in self.resources else {}
        self.recorded.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=dict(inputs),
                state=dict(state or {}),
                dependencies=tuple(request.dependencies),
                protect=bool(request.protect),
                replace_on_changes=tuple(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
            )
        )
        return response


class _LogRecorder(logging.Handler):
    """Keeps what a program logs under the mocks, which Pulumi would print to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)  # Pulumi's own debug lines are not the program's
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


def _recording_logger(recorder: _LogRecorder) -> logging.Logger:
    """A logger of its own (not the root one, nor in logging's registry) that only records."""
    logger = logging.Logger("batchflow.infra.mocks", logging.INFO)
    logger.propagate = False
    logger.addHandler(recorder)
    return logger


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def run_under_mocks(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: Sequence[str] = (),
    project: str = "batchflow",
) -> MockRun:
    """Run `program` under `AzureMocks` and return what it declared and exported.

    `config` maps full keys (`batchflow:pools`) to Pulumi's string form of the values.
    Whatever mapping `program` returns is resolved along with the stack's exports.
    """
    mocks = AzureMocks()
    monitor = _RecordingMonitor(mocks)
    logged = _LogRecorder()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The mock monitor runs in executor threads and gives each an event loop of its own;
    # own those loops, so they are closed here instead of leaking (ResourceWarning).
    thread_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def give_thread_a_loop() -> None:
        thread_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(thread_loop)
        with lock:
            thread_loops.append(thread_loop)

    executor = ThreadPoolExecutor(max_workers=4, initializer=give_thread_a_loop)
    loop.set_default_executor(executor)
    returned: dict[str, Any] = {}
    try:
        pulumi.runtime.reset_options(project=project, stack=stack, preview=False)
        pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
        pulumi.runtime.set_mocks(
            mocks,
            project=project,
            stack=stack,
            preview=False,
            logger=_recording_logger(logged),
            monitor=monitor,
        )

        def run() -> None:
            returned.update(program() or {})

        loop.run_until_complete(run_pulumi_func(run))
        root = pulumi.runtime.get_root_resource()
        exports: dict[str, Any] = dict(getattr(root, "outputs", {}))
        outputs, secrets = loop.run_until_complete(_resolve({**exports, **returned}))
    finally:
        pulumi.runtime.set_all_config({}, [])
        pulumi.runtime.reset_options()
        executor.shutdown(wait=True)
        for thread_loop in thread_loops:
            thread_loop.close()
        asyncio.set_event_loop(None)
        loop.close()
    if monitor.unknown_inputs:
        raise UnknownOutputError(
            f"inputs unknown under the mocks: {', '.join(monitor.unknown_inputs)}"
        )
    return MockRun(monitor.recorded, outputs, frozenset(secrets), tuple(logged.messages))


async def _resolve(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    resolved: dict[str, Any] = {}
    secrets: list[str] = []
    for name, value in values.items():
        output = pulumi.Output.from_input(value)
        if not await output.is_known():
            raise UnknownOutputError(f"output '{name}' is unknown under the mocks")
        resolved[name] = await output.future()
        if _has_unknown(resolved[name]):
            raise UnknownOutputError(f"output '{name}' holds an unknown value under the mocks")
        if await output.is_secret():
            secrets.append(name)
    return resolved, secrets
