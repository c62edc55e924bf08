"""`BatchEnvironment` under mocks: the component tree, ordering through the identity, tags."""

from __future__ import annotations

from typing import Any

import pytest

from batchflow.infra.environment import STACK_OUTPUTS, BatchEnvironment
from batchflow.infra.mocks import MockRun

from .conftest import config, run

NETWORK = {"vnetAddressSpace": "10.42.0.0/16", "subnetAddressPrefix": "10.42.0.0/20"}


def build(**settings: Any) -> MockRun:
    cfg = config(stack="qa", **settings)

    def program() -> dict[str, Any]:
        return BatchEnvironment(cfg.name_prefix, cfg).stack_outputs

    return run(program, stack="qa")


@pytest.fixture(scope="module")
def full() -> MockRun:
    """An environment with a network and two pools (one on the stack's subnet)."""
    return build(
        namePrefix="bfqa",
        tags={"team": "render"},
        pools={"a": {"subnet": "stack"}, "b": {"targetDedicatedNodes": 1}},
        **NETWORK,
    )


def test_every_resource_has_a_batchflow_component_as_parent(full: MockRun) -> None:
    by_urn = {r.urn: r for r in full.resources}
    (top,) = [r for r in full.resources if r.parent not in by_urn]
    assert top.type == "batchflow:azure:BatchEnvironment" and top.name == "bfqa"
    for resource in full.resources:
        if resource is not top:
            assert resource.parent in by_urn, resource.urn
            assert by_urn[resource.parent].type.startswith("batchflow:azure:"), resource.urn


def test_components_of_the_environment(full: MockRun) -> None:
    top = full.one("batchflow:azure:BatchEnvironment")
    children = sorted(r.type for r in full.resources if r.parent == top.urn)
    assert children == [
        "azure-native:resources:ResourceGroup",
        "batchflow:azure:BatchAccount",
        "batchflow:azure:Network",
        "batchflow:azure:NodeIdentity",
        "batchflow:azure:Pool",
        "batchflow:azure:Pool",
        "batchflow:azure:Storage",
    ]


def test_account_and_pools_wait_for_the_storage_role(full: MockRun) -> None:
    role = full.one("azure-native:authorization:RoleAssignment")
    assert role.urn in full.one("azure-native:batch:BatchAccount").dependencies
    for pool in full.of_type("azure-native:batch:Pool"):
        assert role.urn in pool.dependencies


def test_only_the_pool_that_asks_for_it_joins_the_subnet(full: MockRun) -> None:
    subnet = full.one("azure-native:network:Subnet")
    pools = {p.inputs["poolName"]: p.inputs for p in full.of_type("azure-native:batch:Pool")}
    assert pools["a"]["networkConfiguration"]["subnetId"] == subnet.state["id"]
    assert "networkConfiguration" not in pools["b"]


def test_everything_is_in_one_resource_group_and_region(full: MockRun) -> None:
    group = full.one("azure-native:resources:ResourceGroup")
    name = group.state["name"]
    for resource in full.resources:
        if resource.type == "azure-native:authorization:RoleAssignment":
            assert f"/resourceGroups/{name}/" in resource.inputs["scope"]
        elif resource.custom and resource is not group:
            assert resource.inputs["resourceGroupName"] == name, resource.urn
            if "location" in resource.inputs:
                assert resource.inputs["location"] == "westeurope", resource.urn


def test_taggable_resources_carry_stack_and_extra_tags(full: MockRun) -> None:
    tagged = [r for r in full.resources if r.custom and "tags" in r.inputs]
    assert len(tagged) >= 7  # group, storage, identity, account, vnet, ip, nat
    for resource in tagged:
        assert resource.inputs["tags"] == {
            "managed-by": "pulumi",
            "batchflow-stack": "qa",
            "team": "render",
        }


def test_stack_outputs_are_the_contract(full: MockRun) -> None:
    assert tuple(full.outputs) == STACK_OUTPUTS
    assert full.outputs["poolIds"] == {"a": "a", "b": "b"}


def test_without_a_network_no_network_component() -> None:
    result = build()
    assert result.of_type("batchflow:azure:Network") == []
    assert [p.inputs["poolName"] for p in result.of_type("azure-native:batch:Pool")] == ["default"]
