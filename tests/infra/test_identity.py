"""`ManagedIdentity` under mocks: a user-assigned identity and its scoped role assignments."""

from __future__ import annotations

import uuid

import pytest

from batchflow.infra.identity import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    ManagedIdentity,
    ManagedIdentityArgs,
    RoleGrant,
    role_assignment_name,
)
from batchflow.infra.mocks import MockRun

from .conftest import LOCATION, RG, SUBSCRIPTION_PREFIX, children_of, run

STORAGE_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/st1"
)
INPUTS_ID = f"{STORAGE_ID}/blobServices/default/containers/inputs"
OUTPUTS_ID = f"{STORAGE_ID}/blobServices/default/containers/outputs"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
DEFINITIONS = f"{SUBSCRIPTION_PREFIX}/providers/Microsoft.Authorization/roleDefinitions/"


def build() -> MockRun:
    def program() -> dict[str, object]:
        node = ManagedIdentity(
            "bf-nodes",
            ManagedIdentityArgs(
                RG,
                LOCATION,
                [
                    RoleGrant("inputs-reader", STORAGE_BLOB_DATA_READER, INPUTS_ID),
                    RoleGrant("outputs-writer", STORAGE_BLOB_DATA_CONTRIBUTOR, OUTPUTS_ID),
                ],
                purpose="pool nodes",
                tags={"a": "b"},
            ),
        )
        return {
            "resource_id": node.resource_id,
            "principal_id": node.principal_id,
            "client_id": node.client_id,
            "role_assignment_ids": node.role_assignment_ids,
        }

    return run(program)


def roles(result: MockRun) -> dict[str, dict[str, object]]:
    return {r.name: r.inputs for r in result.of_type(ROLE)}


def test_each_grant_is_one_role_on_its_own_scope() -> None:
    by_name = roles(build())
    assert by_name["bf-nodes-inputs-reader"]["scope"] == INPUTS_ID
    assert by_name["bf-nodes-inputs-reader"]["roleDefinitionId"] == (
        DEFINITIONS + STORAGE_BLOB_DATA_READER
    )
    assert by_name["bf-nodes-outputs-writer"]["scope"] == OUTPUTS_ID
    assert by_name["bf-nodes-outputs-writer"]["roleDefinitionId"] == (
        DEFINITIONS + STORAGE_BLOB_DATA_CONTRIBUTOR
    )
    assert len(by_name) == 2  # nothing on the whole account


def test_roles_go_to_the_identity_as_a_service_principal() -> None:
    result = build()
    identity = result.one(IDENTITY)
    for role in roles(result).values():
        assert role["principalType"] == "ServicePrincipal"
        assert role["principalId"] == identity.state["principalId"]
    assert result.outputs["principal_id"] == identity.state["principalId"]


def test_role_assignment_names_are_guids_of_scope_principal_and_role() -> None:
    result = build()
    principal = result.one(IDENTITY).state["principalId"]
    for role in roles(result).values():
        role_guid = str(role["roleDefinitionId"]).rsplit("/", 1)[-1]
        expected = role_assignment_name(str(role["scope"]), principal, role_guid)
        assert role["roleAssignmentName"] == expected
        assert uuid.UUID(str(role["roleAssignmentName"])).version == 5
    # a second run (a lost state) names them the same
    assert {r["roleAssignmentName"] for r in roles(build()).values()} == {
        r["roleAssignmentName"] for r in roles(result).values()
    }


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # another scope
        ((INPUTS_ID, "p", STORAGE_BLOB_DATA_READER), (OUTPUTS_ID, "p", STORAGE_BLOB_DATA_READER)),
        # another principal
        ((INPUTS_ID, "p", STORAGE_BLOB_DATA_READER), (INPUTS_ID, "q", STORAGE_BLOB_DATA_READER)),
        # another role
        (
            (INPUTS_ID, "p", STORAGE_BLOB_DATA_READER),
            (INPUTS_ID, "p", STORAGE_BLOB_DATA_CONTRIBUTOR),
        ),
    ],
)
def test_role_assignment_name_differs_when_any_part_does(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    assert role_assignment_name(*a) != role_assignment_name(*b)


def test_role_assignment_name_ignores_the_case_of_the_scope() -> None:
    # ARM compares resource ids case-insensitively: one assignment, one name
    assert role_assignment_name(INPUTS_ID.upper(), "p", "r") == role_assignment_name(
        INPUTS_ID, "p", "r"
    )


def test_role_assignment_name_never_changes_between_versions() -> None:
    # A deployed stack holds assignments under these names: a new name for the same scope,
    # principal and role would make `pulumi up` create a second one (RoleAssignmentExists).
    principal = "11111111-1111-1111-1111-111111111111"
    assert role_assignment_name(INPUTS_ID, principal, STORAGE_BLOB_DATA_READER) == (
        "2d4e1fec-7ba3-53f0-a2f1-d22076a0c301"
    )


def test_identity_is_user_assigned_and_its_id_waits_for_every_role() -> None:
    result = build()
    identity = result.one(IDENTITY)
    assert (identity.inputs["resourceGroupName"], identity.inputs["location"]) == (RG, LOCATION)
    assert identity.inputs["tags"] == {"a": "b"}
    assert result.outputs["resource_id"] == identity.state["id"]
    assert result.outputs["client_id"] == identity.state["clientId"]
    assert set(result.outputs["role_assignment_ids"]) == {"inputs-reader", "outputs-writer"}
    assert result.outputs["role_assignment_ids"]["inputs-reader"].startswith(
        f"{INPUTS_ID}/providers/Microsoft.Authorization/roleAssignments/"
    )


def test_every_child_has_the_component_as_parent() -> None:
    result = build()
    children = children_of(result, "batchflow:azure:ManagedIdentity")
    assert sorted(c.type for c in children) == [ROLE, ROLE, IDENTITY]
