"""`NodeIdentity` under mocks: a user-assigned identity with blob data rights on one account."""

from __future__ import annotations

import pulumi

from batchflow.infra.identity import STORAGE_BLOB_DATA_CONTRIBUTOR, NodeIdentity, NodeIdentityArgs
from batchflow.infra.mocks import MockRun

from .conftest import LOCATION, RG, SUBSCRIPTION_PREFIX, children_of, run

STORAGE_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/st1"
)
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def build() -> MockRun:
    def program() -> dict[str, pulumi.Output[str]]:
        node = NodeIdentity("bf-nodes", NodeIdentityArgs(RG, LOCATION, STORAGE_ID, {"a": "b"}))
        return {
            "resource_id": node.resource_id,
            "principal_id": node.principal_id,
            "client_id": node.client_id,
            "role_assignment_id": node.role_assignment_id,
        }

    return run(program)


def test_role_is_storage_blob_data_contributor_on_the_storage_account() -> None:
    role = build().one(ROLE).inputs
    assert role["scope"] == STORAGE_ID
    assert role["roleDefinitionId"] == (
        f"{SUBSCRIPTION_PREFIX}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{STORAGE_BLOB_DATA_CONTRIBUTOR}"
    )


def test_role_goes_to_the_identity_as_a_service_principal() -> None:
    result = build()
    role = result.one(ROLE).inputs
    identity = result.one(IDENTITY)
    assert role["principalType"] == "ServicePrincipal"
    assert role["principalId"] == identity.state["principalId"]
    assert role["principalId"] == result.outputs["principal_id"]


def test_identity_is_user_assigned_in_the_resource_group() -> None:
    result = build()
    identity = result.one(IDENTITY)
    assert (identity.inputs["resourceGroupName"], identity.inputs["location"]) == (RG, LOCATION)
    assert identity.inputs["tags"] == {"a": "b"}
    assert result.outputs["resource_id"] == identity.state["id"]
    assert "/userAssignedIdentities/" in result.outputs["resource_id"]
    assert result.outputs["client_id"] == identity.state["clientId"]
    assert result.outputs["role_assignment_id"].startswith(f"{STORAGE_ID}/providers/")


def test_every_child_has_the_component_as_parent() -> None:
    result = build()
    children = children_of(result, "batchflow:azure:NodeIdentity")
    assert sorted(c.type for c in children) == [ROLE, IDENTITY]
