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

import pulumi
import pytest

from batchflow.infra.config import AutoScale, StackConfig
from batchflow.infra.environment import STACK_OUTPUTS
from batchflow.infra.identity import STORAGE_BLOB_DATA_CONTRIBUTOR
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
    identity = result.one("azure-native:managedidentity:UserAssignedIdentity").state
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


def test_node_identity_holds_blob_data_role_on_the_storage_account(
    stack: tuple[StackConfig, MockRun],
) -> None:
    _, result = stack
    role = result.one("azure-native:authorization:RoleAssignment").inputs
    identity = result.one("azure-native:managedidentity:UserAssignedIdentity").state
    assert role["roleDefinitionId"].endswith(f"/roleDefinitions/{STORAGE_BLOB_DATA_CONTRIBUTOR}")
    assert role["principalId"] == identity["principalId"]
    assert role["principalType"] == "ServicePrincipal"
    assert role["scope"] == result.one("azure-native:storage:StorageAccount").state["id"]


def test_account_reaches_auto_storage_through_the_identity(
    stack: tuple[StackConfig, MockRun],
) -> None:
    cfg, result = stack
    account = result.one("azure-native:batch:BatchAccount").inputs
    identity_id = result.outputs["nodeIdentityResourceId"]
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
    assert len([r for r in result.resources if r.custom]) == 10


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
