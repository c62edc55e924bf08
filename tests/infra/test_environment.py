"""`BatchEnvironment` under mocks: the component tree, ordering through the identity, tags."""

from __future__ import annotations

from typing import Any

import pytest

from batchflow.infra.environment import STACK_OUTPUTS, BatchEnvironment
from batchflow.infra.identity import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
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
        "batchflow:azure:ManagedIdentity",
        "batchflow:azure:ManagedIdentity",
        "batchflow:azure:Network",
        "batchflow:azure:Pool",
        "batchflow:azure:Pool",
        "batchflow:azure:Storage",
    ]


def test_account_and_pools_wait_for_the_storage_roles(full: MockRun) -> None:
    roles = {r.name: r.urn for r in full.of_type("azure-native:authorization:RoleAssignment")}
    account = full.one("azure-native:batch:BatchAccount")
    assert set(roles.values()) <= set(
        account.dependencies
    )  # its own, and the nodes' for autoStorage
    for pool in full.of_type("azure-native:batch:Pool"):
        for label in ("inputs-reader", "outputs-writer", "logs-writer"):
            assert roles[f"bfqa-nodes-{label}"] in pool.dependencies


def identities(result: MockRun) -> dict[str, str]:
    """Identity resource ids by logical name."""
    found = result.of_type("azure-native:managedidentity:UserAssignedIdentity")
    return {r.name: r.state["id"] for r in found}


def test_the_account_and_the_nodes_have_separate_identities(full: MockRun) -> None:
    ids = identities(full)
    account = full.one("azure-native:batch:BatchAccount").inputs
    assert account["identity"]["userAssignedIdentities"] == [ids["bfqa-account"]]
    assert account["autoStorage"]["nodeIdentityReference"] == {"resourceId": ids["bfqa-nodes"]}
    for pool in full.of_type("azure-native:batch:Pool"):
        assert pool.inputs["identity"]["userAssignedIdentities"] == [ids["bfqa-nodes"]]
    assert full.outputs["nodeIdentityResourceId"] == ids["bfqa-nodes"]


def test_nodes_read_inputs_and_write_outputs_and_logs_each_on_its_container(
    full: MockRun,
) -> None:
    principals = {
        r.name: r.state["principalId"]
        for r in full.of_type("azure-native:managedidentity:UserAssignedIdentity")
    }
    containers = {
        c.inputs["containerName"]: c.state["id"]
        for c in full.of_type("azure-native:storage:BlobContainer")
    }
    account_id = full.one("azure-native:storage:StorageAccount").state["id"]
    grants = {
        (r.inputs["principalId"], r.inputs["scope"], r.inputs["roleDefinitionId"].rsplit("/")[-1])
        for r in full.of_type("azure-native:authorization:RoleAssignment")
    }
    assert grants == {
        (principals["bfqa-nodes"], containers["inputs"], STORAGE_BLOB_DATA_READER),
        (principals["bfqa-nodes"], containers["outputs"], STORAGE_BLOB_DATA_CONTRIBUTOR),
        (principals["bfqa-nodes"], containers["logs"], STORAGE_BLOB_DATA_CONTRIBUTOR),
        (principals["bfqa-account"], account_id, STORAGE_BLOB_DATA_CONTRIBUTOR),
    }


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
    assert len(tagged) >= 8  # group, storage, two identities, account, vnet, ip, nat
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


def test_without_protect_data_nothing_is_protected_or_locked(full: MockRun) -> None:
    assert [r.name for r in full.resources if r.protect] == []
    assert full.of_type("azure-native:authorization:ManagementLockByScope") == []


def test_protect_data_protects_group_account_and_containers_and_locks_the_account() -> None:
    result = build(
        protectData=True,
        pinnedSettings={
            "location": "westeurope",
            "namePrefix": "batchflow",
            "resourceGroupName": "",
            "storageAccountName": "",
        },
    )
    protected = sorted(r.type for r in result.resources if r.protect)
    assert protected == [
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:BlobContainer",
        "azure-native:storage:BlobContainer",
        "azure-native:storage:BlobContainer",
        "azure-native:storage:StorageAccount",
    ]
    lock = result.one("azure-native:authorization:ManagementLockByScope").inputs
    assert lock["scope"] == result.one("azure-native:storage:StorageAccount").state["id"]
    assert lock["level"] == "CanNotDelete"
    assert lock["lockName"] == "batchflow-protect-data"


def test_storage_firewall_lets_in_every_pool_subnet_and_the_allowed_ips() -> None:
    other = (
        "/subscriptions/1/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    )
    result = build(
        storageFirewall=True,
        storageAllowedIpRanges=["52.1.2.0/24"],
        pools={"a": {"subnet": "stack"}, "b": {"subnet": other}},
        **NETWORK,
    )
    rules = result.one("azure-native:storage:StorageAccount").inputs["networkRuleSet"]
    subnet = result.one("azure-native:network:Subnet").state["id"]
    assert rules["defaultAction"] == "Deny"
    assert rules["bypass"] == "AzureServices"
    assert rules["virtualNetworkRules"] == [
        {"virtualNetworkResourceId": subnet, "action": "Allow"},
        {"virtualNetworkResourceId": other, "action": "Allow"},
    ]
    assert rules["ipRules"] == [{"iPAddressOrRange": "52.1.2.0/24", "action": "Allow"}]


def test_without_storage_firewall_storage_allows_every_network() -> None:
    rules = build().one("azure-native:storage:StorageAccount").inputs["networkRuleSet"]
    assert rules == {"defaultAction": "Allow", "bypass": "AzureServices"}
