"""The whole Pulumi program (`__main__.py`) for each stack file in stacks/, under mocks.

Each stack's settings are loaded for real from its YAML (over Pulumi.yaml's defaults),
then the program runs exactly as `pulumi up` would run it, minus the cloud. The asserts
read the recorded provider inputs and the exported stack outputs; an unknown value fails
(`UnknownOutputError`) instead of being skipped.
"""

from __future__ import annotations

import functools
import json
import re
import runpy
from typing import Any

import pulumi
import pytest

from batchflow.infra.config import AutoScale, StackConfig
from batchflow.infra.environment import STACK_OUTPUTS
from batchflow.infra.identity import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
from batchflow.infra.mocks import MockRun, run_under_mocks
from batchflow.infra.parse import parse_stack_config
from batchflow.infra.plan import load_stack_settings
from batchflow.redact import redact

from ..conftest import REPO

STACKS = sorted(
    p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml")
)
PROGRAM = REPO / "__main__.py"


def run_program(stack: str, config: dict[str, str], secret_keys: tuple[str, ...] = ()) -> MockRun:
    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    return run_under_mocks(program, stack=stack, config=config, secret_keys=secret_keys)


@functools.cache
def stack_run(name: str) -> tuple[StackConfig, MockRun]:
    """A stack's resolved settings and what the program did with them (run once per stack)."""
    settings = load_stack_settings(REPO, name)
    cfg = parse_stack_config(name, settings.project_settings())
    return cfg, run_program(name, settings.pulumi_strings(), settings.secret_keys)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> tuple[StackConfig, MockRun]:
    """Each stack file in stacks/, run through the program."""
    return stack_run(request.param)


def test_there_are_dev_and_prod_stacks() -> None:
    assert {"dev", "prod"} <= set(STACKS)


def test_exports_exactly_the_stack_output_contract(stack: tuple[StackConfig, MockRun]) -> None:
    cfg, result = stack
    outputs = result.outputs
    assert tuple(outputs) == STACK_OUTPUTS
    account = result.one("azure-native:batch:BatchAccount").state
    storage = result.one("azure-native:storage:StorageAccount").state
    identity = node_identity(result)
    group = result.one("azure-native:resources:ResourceGroup").state
    assert outputs["batchAccountName"] == account["name"]
    assert outputs["batchAccountEndpoint"] == f"https://{account['accountEndpoint']}"
    assert outputs["poolIds"] == {pool.name: pool.id for pool in cfg.pools}
    assert outputs["storageAccountName"] == storage["name"]
    assert outputs["storageBlobEndpoint"] == f"https://{storage['name']}.blob.core.windows.net"
    assert outputs["containers"] == cfg.containers.as_dict()
    assert outputs["nodeIdentityResourceId"] == identity["id"]
    assert outputs["resourceGroupName"] == group["name"]


def test_no_output_is_a_secret(stack: tuple[StackConfig, MockRun]) -> None:
    _, result = stack
    assert result.secret_outputs == frozenset()
    text = json.dumps(result.outputs)
    assert redact(text) == text
    assert not re.search(r"(?i)key=|sig=|password|secret|connectionstring", text)


def test_storage_has_secure_defaults(stack: tuple[StackConfig, MockRun]) -> None:
    cfg, result = stack
    account = result.one("azure-native:storage:StorageAccount").inputs
    assert account["kind"] == "StorageV2"
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is cfg.storage_shared_key_access
    containers = result.of_type("azure-native:storage:BlobContainer")
    assert {c.inputs["publicAccess"] for c in containers} == {"None"}


def node_identity(result: MockRun) -> dict[str, Any]:
    """The state of the identity the pools run as."""
    identities = result.of_type("azure-native:managedidentity:UserAssignedIdentity")
    (nodes,) = [i for i in identities if i.name.endswith("-nodes")]
    return nodes.state


def test_node_identity_reads_inputs_and_writes_outputs_and_logs_only(
    stack: tuple[StackConfig, MockRun],
) -> None:
    _, result = stack
    identity = node_identity(result)
    containers = {
        c.inputs["containerName"]: c.state["id"]
        for c in result.of_type("azure-native:storage:BlobContainer")
    }
    roles = {
        r.inputs["scope"]: r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in result.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["principalId"] == identity["principalId"]
    }
    assert roles == {
        containers["inputs"]: STORAGE_BLOB_DATA_READER,
        containers["outputs"]: STORAGE_BLOB_DATA_CONTRIBUTOR,
        containers["logs"]: STORAGE_BLOB_DATA_CONTRIBUTOR,
    }


def test_account_reaches_auto_storage_through_the_identity(
    stack: tuple[StackConfig, MockRun],
) -> None:
    cfg, result = stack
    account = result.one("azure-native:batch:BatchAccount").inputs
    identity_id = result.outputs["nodeIdentityResourceId"]
    assert identity_id not in account["identity"]["userAssignedIdentities"]
    assert account["poolAllocationMode"] == cfg.pool_allocation_mode
    assert account["autoStorage"]["authenticationMode"] == "BatchAccountManagedIdentity"
    assert account["autoStorage"]["nodeIdentityReference"] == {"resourceId": identity_id}
    assert account["allowedAuthenticationModes"] == list(cfg.authentication_modes)


def test_every_pool_runs_as_the_node_identity_and_scales_as_configured(
    stack: tuple[StackConfig, MockRun],
) -> None:
    cfg, result = stack
    identity_id = result.outputs["nodeIdentityResourceId"]
    pools = {p.inputs["poolName"]: p.inputs for p in result.of_type("azure-native:batch:Pool")}
    assert set(pools) == {pool.id for pool in cfg.pools}
    for pool in cfg.pools:
        inputs = pools[pool.id]
        assert inputs["identity"] == {
            "type": "UserAssigned",
            "userAssignedIdentities": [identity_id],
        }
        assert inputs["vmSize"] == pool.vm_size
        scale = inputs["scaleSettings"]
        if isinstance(pool.scale, AutoScale):
            assert set(scale) == {"autoScale"}
            assert scale["autoScale"]["formula"] == pool.scale.formula
        else:
            assert set(scale) == {"fixedScale"}


def test_dev_is_a_small_spot_pool_that_scales_to_zero() -> None:
    cfg, result = stack_run("dev")
    (pool,) = result.of_type("azure-native:batch:Pool")
    formula = pool.inputs["scaleSettings"]["autoScale"]["formula"]
    assert "$TargetDedicatedNodes = min(0, $nodes);" in formula  # no dedicated node
    assert "$TargetLowPriorityNodes = min(4," in formula  # up to 4 Spot nodes
    assert "$pending" in formula and "$NodeDeallocationOption = taskcompletion;" in formula
    assert _vcpus(pool.inputs["vmSize"]) <= 4
    assert "networkConfiguration" not in pool.inputs
    assert result.of_type("azure-native:network:VirtualNetwork") == []
    assert "SharedKey" in cfg.authentication_modes
    # group, storage account, blob service, 3 containers, 2 identities, 4 roles, account, pool
    assert len([r for r in result.resources if r.custom]) == 14
    assert [r for r in result.resources if r.protect] == []
    rules = result.one("azure-native:storage:StorageAccount").inputs["networkRuleSet"]
    assert rules["defaultAction"] == "Allow"  # dev leaves storage open (stack file says so)


def test_prod_pool_is_larger_dedicated_plus_spot_in_a_subnet_without_public_ips() -> None:
    _, result = stack_run("prod")
    (pool,) = result.of_type("azure-native:batch:Pool")
    formula = pool.inputs["scaleSettings"]["autoScale"]["formula"]
    dedicated = re.search(r"\$TargetDedicatedNodes = min\((\d+),", formula)
    spot = re.search(r"\$TargetLowPriorityNodes = min\((\d+),", formula)
    assert dedicated and int(dedicated[1]) > 0 and spot and int(spot[1]) > 0
    dev_size = load_stack_settings(REPO, "dev").project_settings()["pools"]["render"]["vmSize"]
    assert _vcpus(pool.inputs["vmSize"]) > _vcpus(dev_size)
    subnet = result.one("azure-native:network:Subnet")
    assert pool.inputs["networkConfiguration"]["subnetId"] == subnet.state["id"]
    assert pool.inputs["networkConfiguration"]["publicIPAddressConfiguration"] == {
        "provision": "NoPublicIPAddresses"
    }
    assert pool.inputs["targetNodeCommunicationMode"] == "Simplified"
    nat = result.one("azure-native:network:NatGateway")
    assert subnet.inputs["natGateway"] == {"id": nat.state["id"]}
    account = result.one("azure-native:batch:BatchAccount").inputs
    assert account["allowedAuthenticationModes"] == ["AAD"]
    storage = result.one("azure-native:storage:StorageAccount").inputs
    assert storage["allowSharedKeyAccess"] is False


def test_prod_data_is_protected_locked_and_behind_the_storage_firewall() -> None:
    _, result = stack_run("prod")
    protected = {r.type for r in result.resources if r.protect}
    assert protected == {
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobContainer",
    }
    account = result.one("azure-native:storage:StorageAccount")
    lock = result.one("azure-native:authorization:ManagementLockByScope").inputs
    assert (lock["scope"], lock["level"]) == (account.state["id"], "CanNotDelete")
    rules = account.inputs["networkRuleSet"]
    assert rules["defaultAction"] == "Deny" and rules["bypass"] == "AzureServices"
    subnet = result.one("azure-native:network:Subnet").state["id"]
    assert rules["virtualNetworkRules"] == [{"virtualNetworkResourceId": subnet, "action": "Allow"}]


def test_prod_start_task_waits_for_apt_and_its_mount_is_readable_by_tasks() -> None:
    _, result = stack_run("prod")
    (pool,) = result.of_type("azure-native:batch:Pool")
    start = pool.inputs["startTask"]
    assert start["commandLine"].count("apt-get -o DPkg::Lock::Timeout=600 ") == 2
    # apt-get update cannot wait for apt's lists lock (apt-daily at boot): it is retried
    assert re.search(
        r"for \w+ in [\d ]+; do apt-get [^;]*update && break; sleep \d+; done;",
        start["commandLine"],
    )
    assert {"name": "DEBIAN_FRONTEND", "value": "noninteractive"} in start["environmentSettings"]
    (mount,) = pool.inputs["mountConfiguration"]
    assert mount["azureBlobFileSystemConfiguration"]["blobfuseOptions"].endswith("-o allow_other")


PINNED_CHANGES = [
    # a new region: replaces the resource group and the storage account
    ("location", "northeurope", "westeurope"),
    # a new prefix: new logical names, so new resources for every one
    ("namePrefix", "bfprd", "bfprod"),
    # a named resource group instead of the auto-named one
    ("resourceGroupName", "bfprod-rg", ""),
    # a named storage account instead of the auto-named one
    ("storageAccountName", "bfprodstore", ""),
]


@pytest.mark.parametrize(("key", "value", "pinned"), PINNED_CHANGES)
def test_changing_a_pinned_prod_setting_stops_the_program_with_one_line(
    key: str, value: str, pinned: str
) -> None:
    stopped: list[str] = []

    def program() -> None:
        try:
            runpy.run_path(str(PROGRAM), run_name="__main__")
        except pulumi.RunError as exc:
            stopped.append(str(exc))

    settings = load_stack_settings(REPO, "prod").pulumi_strings()
    settings[f"batchflow:{key}"] = value
    result = run_under_mocks(program, stack="prod", config=settings)
    assert result.resources == []
    (message,) = stopped
    (line,) = message.splitlines()
    assert line.startswith(f"stack 'prod': batchflow:{key}: '{value}' differs from")
    # the way out, in the same line
    assert f"set it back to '{pinned}'" in line and "protectData: false" in line


def test_bad_settings_stop_the_program_before_any_resource() -> None:
    stopped: list[str] = []

    def program() -> None:
        try:
            runpy.run_path(str(PROGRAM), run_name="__main__")
        except pulumi.RunError as exc:
            stopped.append(str(exc))

    bad = {
        "batchflow:pools": json.dumps(
            {"render": {"vmSize": "D2", "autoScale": {}, "targetSpotNodes": 1}}
        )
    }
    result = run_under_mocks(program, stack="dev", config=bad)
    assert result.resources == []
    (message,) = stopped
    lines = message.splitlines()
    assert lines[0].startswith("stack 'dev': batchflow:pools.render")
    assert len(lines) == 2  # the VM size, and autoscale next to a fixed size
    assert all("; fix: " in line for line in lines)


def test_unknown_key_in_the_stack_reaches_the_program_as_an_error() -> None:
    stopped: list[str] = []

    def program() -> None:
        try:
            runpy.run_path(str(PROGRAM), run_name="__main__")
        except pulumi.RunError as exc:
            stopped.append(str(exc))

    result = run_under_mocks(program, stack="dev", config={"batchflow:poolz": "{}"})
    assert result.resources == []
    assert stopped and "batchflow:poolz" in stopped[0] and "pools" in stopped[0]


def _vcpus(vm_size: str) -> int:
    """Standard_D8s_v5 -> 8."""
    match = re.match(r"(?i)standard_[a-z]+(\d+)", vm_size)
    assert match, vm_size
    return int(match[1])


def test_warnings_reach_pulumi_up_as_warnings() -> None:
    # The plan prints them itself; `pulumi up` shows what the program logs.
    settings = load_stack_settings(REPO, "dev").pulumi_strings()
    settings["batchflow:pools"] = json.dumps(
        {"render": {"mounts": [{"container": "inputs"}, {"container": "logs"}]}}
    )
    result = run_program("dev", settings)
    (warning,) = [message for level, message in result.log if level == "warning"]
    assert warning.startswith("stack 'dev': batchflow:pools.render.mounts: ")
    assert "Azure/Batch#190" in warning
