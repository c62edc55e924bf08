"""`ManagedIdentity`: a user-assigned managed identity and the storage roles it holds.

A stack has two, so that what tasks can do is no more than what they need:

- the **Batch account's** identity: `Storage Blob Data Contributor` on the storage account,
  which auto-storage with `BatchAccountManagedIdentity` authentication needs; no pool has it;
- the **nodes'** identity (every pool's, the `nodeIdentityResourceId` stack output): tasks,
  resource files, blob mounts and registry pulls act as it. It may read `inputs` (`Storage
  Blob Data Reader`) and write `outputs` and `logs` (`Storage Blob Data Contributor`), each
  role scoped to its container: a task cannot delete or overwrite the inputs of others.

Role assignment names are GUIDs derived from scope, principal and role (`role_assignment_name`),
as ARM templates do with `guid()`: a stack whose state was lost recreates the same names
instead of failing with `RoleAssignmentExists`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import authorization, managedidentity

__all__ = [
    "ROLE_NAMES",
    "STORAGE_BLOB_DATA_CONTRIBUTOR",
    "STORAGE_BLOB_DATA_READER",
    "ManagedIdentity",
    "ManagedIdentityArgs",
    "RoleGrant",
    "role_assignment_name",
    "role_definition_id",
]

#: Built-in role: read, write and delete blobs and containers (not manage the account).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
#: Built-in role: read and list blobs and containers.
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
#: Role definition GUID -> its name, for plans and messages.
ROLE_NAMES: Mapping[str, str] = {
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
}

#: Namespace of batchflow's role assignment names (uuid5 of scope, principal and role).
_ROLE_ASSIGNMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "batchflow:role-assignment")


def role_definition_id(scope_id: str, role: str) -> str:
    """The subscription-scoped id of built-in `role`, for a resource id in that subscription."""
    subscription = scope_id.split("/")[2]
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def role_assignment_name(scope: str, principal_id: str, role: str) -> str:
    """The GUID naming the assignment of `role` to `principal_id` at `scope`.

    The same three always give the same name (ARM compares scopes case-insensitively, so
    the scope is lower-cased first).
    """
    key = f"{scope.lower()}|{principal_id.lower()}|{role.lower()}"
    return str(uuid.uuid5(_ROLE_ASSIGNMENT_NAMESPACE, key))


@dataclass(frozen=True)
class RoleGrant:
    """One built-in role the identity holds on one scope."""

    label: str
    """Suffix of the assignment's logical name, e.g. 'inputs-reader'."""
    role: str
    """The built-in role's GUID, e.g. `STORAGE_BLOB_DATA_READER`."""
    scope: pulumi.Input[str]
    """Resource id the role applies to (a storage account or one of its containers)."""


@dataclass(frozen=True)
class ManagedIdentityArgs:
    """What a `ManagedIdentity` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group the identity goes in."""
    location: pulumi.Input[str]
    """Azure region of the identity."""
    grants: Sequence[RoleGrant]
    """The roles it holds."""
    purpose: str
    """Who acts as it, for the assignments' descriptions (e.g. 'pool nodes')."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the identity."""


class ManagedIdentity(pulumi.ComponentResource):
    """A user-assigned identity and its role assignments.

    Usage: `ManagedIdentity("bfdev-nodes", ManagedIdentityArgs(rg.name, loc, [RoleGrant(...)],
    "pool nodes"))`.
    """

    resource_id: pulumi.Output[str]
    """The identity's resource id: what pools, mounts and registries reference.

    It resolves once every role assignment exists, so a Batch account or pool that uses the
    identity is created after the identity can reach storage.
    """
    principal_id: pulumi.Output[str]
    """The identity's object id in Entra ID (whom role assignments name)."""
    client_id: pulumi.Output[str]
    """The identity's application id (AZURE_CLIENT_ID for code on a node)."""
    role_assignment_ids: dict[str, pulumi.Output[str]]
    """Resource ids of the role assignments, by grant label."""

    def __init__(
        self, name: str, args: ManagedIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:ManagedIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        identity = managedidentity.UserAssignedIdentity(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )
        self.role_assignment_ids = {}
        for grant in args.grants:
            scope = pulumi.Output.from_input(grant.scope)
            assignment = authorization.RoleAssignment(
                f"{name}-{grant.label}",
                role_assignment_name=pulumi.Output.all(scope, identity.principal_id).apply(
                    _name_for(grant.role)
                ),
                scope=scope,
                principal_id=identity.principal_id,
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=scope.apply(_definition_for(grant.role)),
                description=f"batchflow: {args.purpose} ({ROLE_NAMES.get(grant.role, grant.role)})",
                opts=child,
            )
            self.role_assignment_ids[grant.label] = assignment.id

        self.resource_id = pulumi.Output.all(identity.id, *self.role_assignment_ids.values()).apply(
            lambda ids: ids[0]
        )
        self.principal_id = identity.principal_id
        self.client_id = identity.client_id
        self.register_outputs(
            {
                "resourceId": self.resource_id,
                "principalId": self.principal_id,
                "clientId": self.client_id,
                "roleAssignmentIds": self.role_assignment_ids,
            }
        )


def _name_for(role: str) -> Callable[[list[Any]], str]:
    """(scope, principal id) -> the assignment's name, for `role`."""
    return lambda values: role_assignment_name(str(values[0]), str(values[1]), role)


def _definition_for(role: str) -> Callable[[str], str]:
    """scope -> the role definition id of `role` in the scope's subscription."""
    return lambda scope_id: role_definition_id(scope_id, role)
