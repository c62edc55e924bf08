"""`BatchAccount` under mocks: allocation mode, identity-based auto-storage, who may sign in."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from batchflow.infra.account import BatchAccount, BatchAccountArgs
from batchflow.infra.mocks import MockRun

from .conftest import LOCATION, RG, SUBSCRIPTION_PREFIX, children_of, run

STORAGE_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/st1"
)
IDENTITY_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/account"
)
NODES_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/nodes"
)
VAULT_ID = f"{SUBSCRIPTION_PREFIX}/resourceGroups/kv/providers/Microsoft.KeyVault/vaults/bfkv"
ACCOUNT = "azure-native:batch:BatchAccount"


def build(**overrides: Any) -> MockRun:
    def program() -> dict[str, pulumi.Output[str]]:
        account = BatchAccount(
            "bfdev", BatchAccountArgs(RG, LOCATION, STORAGE_ID, IDENTITY_ID, NODES_ID, **overrides)
        )
        return {
            "name": account.account_name,
            "endpoint": account.endpoint,
            "id": account.account_id,
        }

    return run(program)


def test_pools_are_allocated_by_batch_service() -> None:
    inputs = build().one(ACCOUNT).inputs
    assert inputs["poolAllocationMode"] == "BatchService"
    assert "keyVaultReference" not in inputs


def test_auto_storage_uses_the_accounts_identity_and_nodes_use_theirs() -> None:
    inputs = build().one(ACCOUNT).inputs
    assert inputs["autoStorage"] == {
        "storageAccountId": STORAGE_ID,
        "authenticationMode": "BatchAccountManagedIdentity",
        "nodeIdentityReference": {"resourceId": NODES_ID},
    }
    # the account acts as its own identity, never as the nodes'
    assert inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [IDENTITY_ID]}


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        (("AAD",), ["AAD"]),  # prod: Entra ID only
        (("AAD", "SharedKey"), ["AAD", "SharedKey"]),  # dev: shared keys too
    ],
)
def test_authentication_modes_are_the_stacks_choice(
    modes: tuple[str, ...], expected: list[str]
) -> None:
    inputs = build(authentication_modes=modes).one(ACCOUNT).inputs
    assert inputs["allowedAuthenticationModes"] == expected


@pytest.mark.parametrize(("public", "expected"), [(True, "Enabled"), (False, "Disabled")])
def test_public_network_access_is_configurable(public: bool, expected: str) -> None:
    inputs = build(public_network_access=public).one(ACCOUNT).inputs
    assert inputs["publicNetworkAccess"] == expected


def test_user_subscription_account_references_its_key_vault() -> None:
    inputs = (
        build(
            pool_allocation_mode="UserSubscription",
            key_vault_id=VAULT_ID,
            key_vault_url="https://bfkv.vault.azure.net/",
        )
        .one(ACCOUNT)
        .inputs
    )
    assert inputs["poolAllocationMode"] == "UserSubscription"
    assert inputs["keyVaultReference"] == {"id": VAULT_ID, "url": "https://bfkv.vault.azure.net/"}


def test_user_subscription_without_key_vault_is_refused() -> None:
    with pytest.raises(ValueError, match="Key Vault"):
        build(pool_allocation_mode="UserSubscription")


def test_endpoint_output_is_https_url_of_the_account() -> None:
    result = build(account_name="bfdev")
    assert result.one(ACCOUNT).inputs["accountName"] == "bfdev"
    assert result.outputs["name"] == "bfdev"
    assert result.outputs["endpoint"] == "https://bfdev.westeurope.batch.azure.com"
    assert result.outputs["id"].endswith("/providers/Microsoft.Batch/batchAccounts/bfdev")


def test_the_account_is_the_components_only_child() -> None:
    result = build()
    assert [c.type for c in children_of(result, "batchflow:azure:BatchAccount")] == [ACCOUNT]
