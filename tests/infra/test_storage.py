"""`Storage` under mocks: the account's secure defaults and its three private containers."""

from __future__ import annotations

import pulumi
import pytest

from batchflow.infra.config import ContainerNames
from batchflow.infra.mocks import MockRun
from batchflow.infra.storage import Storage, StorageArgs

from .conftest import LOCATION, RG, children_of, run

ACCOUNT = "azure-native:storage:StorageAccount"


def build(**overrides: object) -> MockRun:
    def program() -> dict[str, pulumi.Output[str]]:
        args = StorageArgs(
            resource_group_name=RG,
            location=LOCATION,
            containers=ContainerNames("inputs", "outputs", "logs"),
            **overrides,  # type: ignore[arg-type]  # keyword overrides of StorageArgs
        )
        storage = Storage("bfst", args)
        return {
            "account_name": storage.account_name,
            "account_id": storage.account_id,
            "blob_endpoint": storage.blob_endpoint,
            **{f"container_{k}": v for k, v in storage.container_names.items()},
        }

    return run(program)


def test_account_is_storage_v2_with_secure_defaults() -> None:
    inputs = build().one(ACCOUNT).inputs
    assert inputs["kind"] == "StorageV2"
    assert inputs["sku"] == {"name": "Standard_LRS"}
    assert inputs["enableHttpsTrafficOnly"] is True
    assert inputs["minimumTlsVersion"] == "TLS1_2"
    assert inputs["allowBlobPublicAccess"] is False
    assert inputs["allowSharedKeyAccess"] is False
    assert inputs["defaultToOAuthAuthentication"] is True
    assert inputs["allowCrossTenantReplication"] is False
    assert (inputs["resourceGroupName"], inputs["location"]) == (RG, LOCATION)


@pytest.mark.parametrize("allowed", [True, False])
def test_shared_key_access_is_the_stacks_choice(allowed: bool) -> None:
    assert build(shared_key_access=allowed).one(ACCOUNT).inputs["allowSharedKeyAccess"] is allowed


def test_explicit_account_name_and_sku() -> None:
    result = build(account_name="bfdevstore", sku="Standard_ZRS")
    inputs = result.one(ACCOUNT).inputs
    assert (inputs["accountName"], inputs["sku"]) == ("bfdevstore", {"name": "Standard_ZRS"})
    assert result.outputs["account_name"] == "bfdevstore"


def test_three_private_containers_named_by_role() -> None:
    result = build()
    containers = result.of_type("azure-native:storage:BlobContainer")
    assert sorted(c.inputs["containerName"] for c in containers) == ["inputs", "logs", "outputs"]
    assert {c.inputs["publicAccess"] for c in containers} == {"None"}
    account_name = result.outputs["account_name"]
    assert {c.inputs["accountName"] for c in containers} == {account_name}
    assert [result.outputs[f"container_{r}"] for r in ("inputs", "outputs", "logs")] == [
        "inputs",
        "outputs",
        "logs",
    ]


def test_soft_delete_keeps_blobs_and_containers_for_the_given_days() -> None:
    service = build(soft_delete_days=30).one("azure-native:storage:BlobServiceProperties")
    policy = {"enabled": True, "days": 30}
    assert service.inputs["deleteRetentionPolicy"] == policy
    assert service.inputs["containerDeleteRetentionPolicy"] == policy
    assert service.inputs["blobServicesName"] == "default"


def test_zero_days_turns_soft_delete_off() -> None:
    service = build(soft_delete_days=0).one("azure-native:storage:BlobServiceProperties")
    assert service.inputs["deleteRetentionPolicy"] == {"enabled": False}


def test_blob_endpoint_has_https_and_no_trailing_slash() -> None:
    outputs = build().outputs
    assert outputs["blob_endpoint"] == f"https://{outputs['account_name']}.blob.core.windows.net"
    assert outputs["account_id"].endswith(f"/storageAccounts/{outputs['account_name']}")


def test_every_child_has_the_component_as_parent() -> None:
    result = build()
    component = result.one("batchflow:azure:Storage")
    assert component.name == "bfst"
    children = children_of(result, "batchflow:azure:Storage")
    assert len(children) == 5  # account, blob service, three containers
    assert {r.urn for r in result.resources if r.custom} == {c.urn for c in children}
    assert all(c.name.startswith("bfst") for c in children)
