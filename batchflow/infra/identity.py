"""`NodeIdentity`: the user-assigned managed identity the pools' nodes act as.

It holds `Storage Blob Data Contributor` on the stack's storage account, so tasks read
inputs, write outputs and mount containers with tokens from the node, never with keys
or SAS. The Batch account uses the same identity to reach its auto-storage account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

__all__ = ["STORAGE_BLOB_DATA_CONTRIBUTOR", "NodeIdentity", "NodeIdentityArgs"]

#: Built-in role: read, write and delete blobs and containers (not manage the account).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def role_definition_id(scope_id: str, role: str) -> str:
    """The subscription-scoped id of built-in `role`, for a resource id in that subscription."""
    subscription = scope_id.split("/")[2]
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


@dataclass(frozen=True)
class NodeIdentityArgs:
    """What a `NodeIdentity` needs."""

    resource_group_name: pulumi.Input[str]
    """Resource group the identity goes in."""
    location: pulumi.Input[str]
    """Azure region of the identity."""
    storage_account_id: pulumi.Input[str]
    """Resource id of the storage account the nodes read and write."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the identity."""


class NodeIdentity(pulumi.ComponentResource):
    """A user-assigned identity with Storage Blob Data Contributor on one storage account.

    Usage: `NodeIdentity("bfdev-nodes", NodeIdentityArgs(rg.name, "westeurope", st.account_id))`.
    """

    resource_id: pulumi.Output[str]
    """The identity's resource id: what pools, mounts and registries reference.

    It resolves once the role assignment exists, so a Batch account or pool that uses the
    identity is created after the identity can reach storage.
    """
    principal_id: pulumi.Output[str]
    """The identity's object id in Entra ID (whom role assignments name)."""
    client_id: pulumi.Output[str]
    """The identity's application id (AZURE_CLIENT_ID for code on a node)."""
    role_assignment_id: pulumi.Output[str]
    """Resource id of the storage role assignment."""

    def __init__(
        self, name: str, args: NodeIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("batchflow:azure:NodeIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        identity = managedidentity.UserAssignedIdentity(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=child,
        )
        scope = pulumi.Output.from_input(args.storage_account_id)
        assignment = authorization.RoleAssignment(
            f"{name}-blob-data",
            scope=scope,
            principal_id=identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=scope.apply(
                lambda account_id: role_definition_id(account_id, STORAGE_BLOB_DATA_CONTRIBUTOR)
            ),
            description="batchflow: pool nodes read inputs and write outputs",
            opts=child,
        )

        self.resource_id = pulumi.Output.all(identity.id, assignment.id).apply(lambda ids: ids[0])
        self.principal_id = identity.principal_id
        self.client_id = identity.client_id
        self.role_assignment_id = assignment.id
        self.register_outputs(
            {
                "resourceId": self.resource_id,
                "principalId": self.principal_id,
                "clientId": self.client_id,
                "roleAssignmentId": self.role_assignment_id,
            }
        )
