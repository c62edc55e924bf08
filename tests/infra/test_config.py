"""Stack settings: defaults, Pulumi.yaml's schema, and every rule that refuses a bad value.

A refused stack raises `StackConfigError` before any resource exists; each problem names
the stack, the full key and a fix. Tests assert the fields (`stack`, `key`), and that the
message carries the fix, not the exact wording.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from batchflow.infra.config import (
    DEFAULT_IMAGE,
    POOL_SETTINGS,
    SETTINGS,
    AutoScale,
    FixedScale,
    ImageReference,
    StackConfigError,
    default_autoscale_formula,
)
from batchflow.infra.parse import parse_stack_config
from batchflow.infra.rules import (
    duration_seconds,
    node_agent_for,
    vm_size_is_arm64,
    vm_size_vcpus,
)

from ..conftest import REPO

SUBNET = (
    "/subscriptions/1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
)
VAULT_ID = "/subscriptions/1/resourceGroups/kv/providers/Microsoft.KeyVault/vaults/bfkv"
PINS = {
    "location": "westeurope",
    "namePrefix": "batchflow",
    "resourceGroupName": "",
    "storageAccountName": "",
}


def problem_of(settings: dict[str, Any], stack: str = "dev") -> StackConfigError:
    with pytest.raises(StackConfigError) as info:
        parse_stack_config(stack, settings)
    return info.value


# -- defaults and Pulumi.yaml --------------------------------------------------------------


def test_defaults_give_one_autoscaled_pool_on_ubuntu_2404() -> None:
    cfg = parse_stack_config("dev", {})
    (pool,) = cfg.pools
    assert pool.id == "default"
    assert str(pool.image) == DEFAULT_IMAGE
    assert pool.node_agent_sku_id == "batch.node.ubuntu 24.04"
    assert isinstance(pool.scale, AutoScale)
    assert (pool.scale.max_dedicated_nodes, pool.scale.max_spot_nodes) == (2, 0)
    assert cfg.authentication_modes == ("AAD",)
    assert cfg.storage_shared_key_access is False
    assert cfg.pool_allocation_mode == "BatchService"
    assert cfg.network is None


def test_pulumi_yaml_declares_every_setting_with_type_description_and_default() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    declared = project["config"]
    assert list(declared) == [s.key for s in SETTINGS]
    for setting in SETTINGS:
        entry = declared[setting.key]
        assert entry["type"] == setting.type, setting.key
        assert entry["default"] == setting.default, setting.key
        assert entry["description"] == setting.description, setting.key
        if setting.type == "array":
            assert entry["items"] == {"type": "string"}


def test_pulumi_yaml_runs_python_from_the_repo_virtualenv_with_stacks_dir() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "batchflow"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["stackConfigDir"] == "stacks"


def test_values_in_pulumi_string_form_equal_typed_values() -> None:
    typed = parse_stack_config(
        "dev",
        {"storageSharedKeyAccess": True, "blobSoftDeleteDays": 3, "pools": {"r": {}}},
    )
    as_strings = parse_stack_config(
        "dev",
        {"storageSharedKeyAccess": "true", "blobSoftDeleteDays": "3", "pools": '{"r": {}}'},
    )
    assert typed == as_strings


def test_fixed_size_pool() -> None:
    cfg = parse_stack_config(
        "dev", {"pools": {"p": {"targetDedicatedNodes": 2, "targetSpotNodes": 3}}}
    )
    assert cfg.pools[0].scale == FixedScale(2, 3, "PT15M")
    assert cfg.pools[0].uses_spot


def test_spot_nodes_are_accepted_with_batch_service_allocation() -> None:
    # Since Batch's March 2026 migration, Batch-managed accounts allocate Spot nodes for
    # the low-priority fields, so no allocation mode refuses Spot any more (README).
    cfg = parse_stack_config("dev", {"pools": {"p": {"autoScale": {"maxSpotNodes": 4}}}})
    assert cfg.pool_allocation_mode == "BatchService"
    assert cfg.pools[0].uses_spot


def test_pool_id_of_64_characters_is_accepted() -> None:
    cfg = parse_stack_config("dev", {"pools": {"p": {"id": "a" * 64}}})
    assert cfg.pools[0].id == "a" * 64


def test_user_subscription_with_a_key_vault_is_accepted() -> None:
    cfg = parse_stack_config(
        "dev",
        {
            "poolAllocationMode": "UserSubscription",
            "keyVaultId": VAULT_ID,
            "keyVaultUrl": "https://bfkv.vault.azure.net/",
        },
    )
    assert (cfg.key_vault_id, cfg.key_vault_url) == (VAULT_ID, "https://bfkv.vault.azure.net/")


# -- refused settings ---------------------------------------------------------------------

P = "batchflow:pools.p"

BAD: list[tuple[dict[str, Any], str, str]] = [
    # (settings, the key named, a word of the fix)
    # a top-level typo gets a suggestion
    ({"locaton": "westeurope"}, "batchflow:locaton", "location"),
    # an unknown pool setting, with the likely one
    ({"pools": {"p": {"vmsize": "Standard_D2s_v5"}}}, f"{P}.vmsize", "vmSize"),
    # an unknown setting inside autoScale
    ({"pools": {"p": {"autoScale": {"maxNodes": 3}}}}, f"{P}.autoScale.maxNodes", "max"),
    # autoscale and a fixed size at once
    ({"pools": {"p": {"autoScale": {}, "targetDedicatedNodes": 2}}}, P, "remove"),
    # resizeTimeout is a fixed-size setting too
    ({"pools": {"p": {"autoScale": {}, "resizeTimeout": "PT15M"}}}, P, "remove"),
    # a VM size with spaces
    ({"pools": {"p": {"vmSize": "Standard D2s v5"}}}, f"{P}.vmSize", "Standard_D2s_v5"),
    # a VM size without its tier
    ({"pools": {"p": {"vmSize": "D2s_v5"}}}, f"{P}.vmSize", "Standard_D2s_v5"),
    # an image that is not publisher:offer:sku[:version]
    ({"pools": {"p": {"image": "Canonical/ubuntu-24_04-lts"}}}, f"{P}.image", "publisher"),
    # an image version that is neither latest nor a.b.c
    ({"pools": {"p": {"image": "Canonical:ubuntu-24_04-lts:server:new"}}}, f"{P}.image", ":"),
    # a node agent that cannot run the image
    (
        {"pools": {"p": {"nodeAgentSkuId": "batch.node.ubuntu 22.04"}}},
        f"{P}.nodeAgentSkuId",
        "24.04",
    ),
    # an image whose node agent cannot be derived
    (
        {"pools": {"p": {"image": "OpenLogic:CentOS:7_9"}}},
        f"{P}.nodeAgentSkuId",
        "supported-images",
    ),
    # a pool id over Batch's 64 characters
    ({"pools": {"p": {"id": "a" * 65}}}, f"{P}.id", "rename"),
    # a pool id with a character Batch refuses
    ({"pools": {"p": {"id": "render.v2"}}}, f"{P}.id", "rename"),
    # a logical name that cannot be a pool id and no id to replace it
    ({"pools": {"my pool": {}}}, "batchflow:pools.my pool", "set its id"),
    # two ids that differ only in case
    ({"pools": {"a": {"id": "Render"}, "b": {"id": "render"}}}, "batchflow:pools.b.id", "own id"),
    # a pool that could never get a node
    ({"pools": {"p": {"autoScale": {"maxDedicatedNodes": 0}}}}, f"{P}.autoScale", "raise"),
    # caps next to a custom formula
    (
        {
            "pools": {
                "p": {"autoScale": {"formula": "$TargetDedicatedNodes = 1;", "maxSpotNodes": 2}}
            }
        },
        f"{P}.autoScale",
        "formula",
    ),
    # a formula that never sets a target
    ({"pools": {"p": {"autoScale": {"formula": "$x = 1;"}}}}, f"{P}.autoScale.formula", "assign"),
    # an evaluation interval under Batch's 5 minutes
    (
        {"pools": {"p": {"autoScale": {"evaluationInterval": "PT1M"}}}},
        f"{P}.autoScale.evaluationInterval",
        "PT5M",
    ),
    # more task slots than Batch allows
    ({"pools": {"p": {"taskSlotsPerNode": 300}}}, f"{P}.taskSlotsPerNode", "vCPU"),
    # a count written as text
    (
        {"pools": {"p": {"targetDedicatedNodes": "two"}}},
        f"{P}.targetDedicatedNodes",
        "whole number",
    ),
    # no public IPs outside a virtual network
    (
        {"pools": {"p": {"publicIPAddresses": "NoPublicIPAddresses"}}},
        f"{P}.publicIPAddresses",
        "subnet",
    ),
    # no public IPs need simplified node communication
    (
        {
            "pools": {
                "p": {
                    "subnet": SUBNET,
                    "publicIPAddresses": "NoPublicIPAddresses",
                    "nodeCommunicationMode": "Classic",
                }
            }
        },
        f"{P}.nodeCommunicationMode",
        "Simplified",
    ),
    # no public IPs and no NAT gateway: no way out to Batch
    (
        {
            "vnetAddressSpace": "10.0.0.0/16",
            "subnetAddressPrefix": "10.0.0.0/24",
            "natGateway": False,
            "pools": {"p": {"subnet": "stack", "publicIPAddresses": "NoPublicIPAddresses"}},
        },
        "batchflow:natGateway",
        "true",
    ),
    # the stack's subnet when the stack has no network
    ({"pools": {"p": {"subnet": "stack"}}}, f"{P}.subnet", "vnetAddressSpace"),
    # a subnet that is not a resource id
    ({"pools": {"p": {"subnet": "pools"}}}, f"{P}.subnet", "/subscriptions/"),
    # a SAS token written into a stack file
    (
        {
            "pools": {
                "p": {
                    "startTask": {
                        "commandLine": "/bin/true",
                        "resourceFiles": [
                            {
                                "httpUrl": "https://a.blob.core.windows.net/c/f?sv=1&sig=abc",
                                "filePath": "f",
                            }
                        ],
                    }
                }
            }
        },
        f"{P}.startTask.resourceFiles[0]",
        "identity",
    ),
    # a resource file with two sources
    (
        {
            "pools": {
                "p": {
                    "startTask": {
                        "commandLine": "/bin/true",
                        "resourceFiles": [
                            {"httpUrl": "https://x/f", "container": "inputs", "filePath": "f"}
                        ],
                    }
                }
            }
        },
        f"{P}.startTask.resourceFiles[0]",
        "exactly one",
    ),
    # a start task without a command
    ({"pools": {"p": {"startTask": {"elevated": True}}}}, f"{P}.startTask.commandLine", "command"),
    # a resource file escaping its directory
    (
        {
            "pools": {
                "p": {
                    "startTask": {
                        "commandLine": "/bin/true",
                        "resourceFiles": [{"httpUrl": "https://x/f", "filePath": "../f"}],
                    }
                }
            }
        },
        f"{P}.startTask.resourceFiles[0].filePath",
        "relative",
    ),
    # a mount of a container the stack does not have
    ({"pools": {"p": {"mounts": [{"container": "data"}]}}}, f"{P}.mounts[0].container", "inputs"),
    # a registry that is not a server name
    (
        {"pools": {"p": {"container": {"registries": ["https://x.azurecr.io"]}}}},
        f"{P}.container.registries",
        "azurecr",
    ),
    # a UserSubscription account without its Key Vault
    ({"poolAllocationMode": "UserSubscription"}, "batchflow:keyVaultId", "Key Vault"),
    # a Key Vault on a BatchService account
    ({"keyVaultId": VAULT_ID}, "batchflow:keyVaultId", "UserSubscription"),
    # an allocation mode that does not exist
    ({"poolAllocationMode": "Dedicated"}, "batchflow:poolAllocationMode", "BatchService"),
    # the retired task authentication token
    (
        {"batchAuthenticationModes": ["AAD", "TaskAuthenticationToken"]},
        "batchflow:batchAuthenticationModes",
        "remove",
    ),
    # no authentication mode at all
    ({"batchAuthenticationModes": []}, "batchflow:batchAuthenticationModes", "AAD"),
    # a subnet outside its virtual network
    (
        {"vnetAddressSpace": "10.0.0.0/16", "subnetAddressPrefix": "10.1.0.0/24"},
        "batchflow:subnetAddressPrefix",
        "inside",
    ),
    # half a network
    ({"vnetAddressSpace": "10.0.0.0/16"}, "batchflow:subnetAddressPrefix", "both"),
    # a CIDR with host bits
    (
        {"vnetAddressSpace": "10.0.0.1/16", "subnetAddressPrefix": "10.0.0.0/24"},
        "batchflow:vnetAddressSpace",
        "CIDR",
    ),
    # a storage SKU that does not exist
    ({"storageSku": "Standard_XRS"}, "batchflow:storageSku", "Standard_LRS"),
    # a container name with capitals
    ({"inputsContainer": "Inputs"}, "batchflow:inputsContainer", "lowercase"),
    # a storage account name too long
    ({"storageAccountName": "a" * 25}, "batchflow:storageAccountName", "3-24"),
    # a prefix that would overflow account names
    ({"namePrefix": "batchflowproduction"}, "batchflow:namePrefix", "bfdev"),
    # a boolean written as a word
    ({"natGateway": "yes"}, "batchflow:natGateway", "true or false"),
    # pools written as a list
    ({"pools": ["render"]}, "batchflow:pools", "map"),
    # no pool at all
    ({"pools": {}}, "batchflow:pools", "add one"),
    # more task slots than 4 per vCPU (Standard_D2s_v5 has 2)
    ({"pools": {"p": {"taskSlotsPerNode": 9}}}, f"{P}.taskSlotsPerNode", "at most 8"),
    # constrained vCPUs count: Standard_E64-16ds_v4 has 16 active
    (
        {"pools": {"p": {"vmSize": "Standard_E64-16ds_v4", "taskSlotsPerNode": 65}}},
        f"{P}.taskSlotsPerNode",
        "at most 64",
    ),
    # an Arm64 image on an x64 size
    (
        {"pools": {"p": {"image": "Canonical:ubuntu-24_04-lts:server-arm64"}}},
        f"{P}.image",
        "Arm64 size",
    ),
    # an x64 image on an Arm64 size
    ({"pools": {"p": {"vmSize": "Standard_E4pds_v5"}}}, f"{P}.image", "server-arm64"),
    # apt in a start task that is not elevated
    (
        {"pools": {"p": {"startTask": {"commandLine": "/bin/bash -c 'apt-get install -y jq'"}}}},
        f"{P}.startTask.elevated",
        "elevated: true",
    ),
    # protectData without pins
    ({"protectData": True}, "batchflow:pinnedSettings", "pinnedSettings: {location: 'westeurope'"),
    # a pinned setting changed
    (
        {"protectData": True, "pinnedSettings": PINS, "location": "northeurope"},
        "batchflow:location",
        "set it back to 'westeurope'",
    ),
    # a storage account renamed under protection
    (
        {"protectData": True, "pinnedSettings": PINS, "storageAccountName": "bfnewname"},
        "batchflow:storageAccountName",
        "protectData: false",
    ),
    # a pin of a setting that replaces nothing
    (
        {"protectData": True, "pinnedSettings": {**PINS, "storageSku": "Standard_LRS"}},
        "batchflow:pinnedSettings.storageSku",
        "location",
    ),
    # the storage firewall would cut off a pool with Batch-managed networking
    ({"storageFirewall": True}, "batchflow:pools.default.subnet", "stack"),
    # allowed IPs without the firewall change nothing
    ({"storageAllowedIpRanges": ["52.1.2.3"]}, "batchflow:storageAllowedIpRanges", "true"),
    # a private range in the storage firewall
    (
        {
            "storageFirewall": True,
            "storageAllowedIpRanges": ["10.0.0.0/8"],
            "pools": {"p": {"subnet": SUBNET}},
        },
        "batchflow:storageAllowedIpRanges",
        "public",
    ),
    # a /32 range, which storage IP rules refuse
    (
        {
            "storageFirewall": True,
            "storageAllowedIpRanges": ["52.1.2.3/32"],
            "pools": {"p": {"subnet": SUBNET}},
        },
        "batchflow:storageAllowedIpRanges",
        "/30",
    ),
]


@pytest.mark.parametrize(("settings", "key", "fix_word"), BAD)
def test_bad_setting_names_stack_key_and_fix(
    settings: dict[str, Any], key: str, fix_word: str
) -> None:
    error = problem_of(settings)
    keys = [p.key for p in error.problems]
    assert key in keys, keys
    problem = error.problems[keys.index(key)]
    assert problem.stack == "dev"
    assert fix_word.lower() in problem.fix.lower() or fix_word.lower() in problem.message.lower()
    line = str(problem)
    assert line.startswith(f"stack 'dev': {key}: ")
    assert "; fix: " in line
    assert "\n" not in line


def test_one_bad_setting_is_one_line() -> None:
    error = problem_of({"pools": {"p": {"vmSize": "D2"}}})
    assert len(str(error).splitlines()) == 1
    assert (error.stack, error.key) == ("dev", "batchflow:pools.p.vmSize")


def test_every_problem_is_reported_at_once() -> None:
    error = problem_of({"storageSku": "x", "pools": {"a": {"vmSize": "x"}, "b": {"bogus": 1}}})
    assert {p.key for p in error.problems} == {
        "batchflow:storageSku",
        "batchflow:pools.a.vmSize",
        "batchflow:pools.b.bogus",
    }
    assert len(str(error).splitlines()) == 3


def test_every_pool_setting_in_the_readme_table_is_accepted() -> None:
    # POOL_SETTINGS is what unknown-key detection accepts; each must really be read.
    pool = {
        "id": "p1",
        "vmSize": "Standard_D4s_v5",
        "image": "Canonical:ubuntu-24_04-lts:server",
        "nodeAgentSkuId": "batch.node.ubuntu 24.04",
        "taskSlotsPerNode": 4,
        "nodeFillType": "Pack",
        "autoScale": {"formula": "$TargetDedicatedNodes = 1;", "evaluationInterval": "PT10M"},
        "startTask": {"commandLine": "/bin/true"},
        "container": {"images": ["ubuntu:24.04"]},
        "mounts": [{"container": "inputs"}],
        "subnet": SUBNET,
        "publicIPAddresses": "NoPublicIPAddresses",
        "nodeCommunicationMode": "Simplified",
        "interNodeCommunication": True,
    }
    fixed = {"targetDedicatedNodes": 1, "targetSpotNodes": 1, "resizeTimeout": "PT20M"}
    assert set(pool) | set(fixed) == set(POOL_SETTINGS)
    (resolved,) = parse_stack_config("dev", {"pools": {"p": pool}}).pools
    assert resolved.id == "p1" and resolved.task_slots_per_node == 4
    assert resolved.inter_node_communication and resolved.subnet == SUBNET
    assert resolved.mounts[0].path == "inputs"
    assert parse_stack_config("dev", {"pools": {"p": fixed}}).pools[0].scale == FixedScale(
        1, 1, "PT20M"
    )


# -- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT5M", 300),  # minutes
        ("PT1H30M", 5400),  # hours and minutes
        ("P1DT2H", 93600),  # days and hours
        ("PT0.5S", 0.5),  # fractional seconds
        ("P", None),  # nothing after P
        ("PT", None),  # nothing after T
        ("5m", None),  # not ISO 8601
    ],
)
def test_duration_seconds(text: str, seconds: float | None) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(
    ("image", "agent"),
    [
        (ImageReference("Canonical", "ubuntu-24_04-lts", "server"), "batch.node.ubuntu 24.04"),
        (
            ImageReference("canonical", "ubuntu-22_04-lts", "server-arm64"),
            "batch.node.ubuntu 22.04-arm64",
        ),
        (ImageReference("microsoft-dsvm", "ubuntu-hpc", "2404"), "batch.node.ubuntu 24.04"),
        (ImageReference("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter"), None),
    ],
)
def test_node_agent_is_derived_for_ubuntu_images(image: ImageReference, agent: str | None) -> None:
    assert node_agent_for(image) == agent


def test_default_formula_follows_pending_tasks_and_scales_to_zero() -> None:
    formula = default_autoscale_formula(max_dedicated=4, max_spot=32, slots_per_node=8)
    assert "$PendingTasks" in formula
    assert "$TargetDedicatedNodes = min(4, $nodes);" in formula
    assert "$TargetLowPriorityNodes = min(32, max(0, $nodes - $TargetDedicatedNodes));" in formula
    # nothing pending -> zero nodes; 8 slots per node -> ceil(pending / 8) nodes
    assert "$nodes = $pending > 0 ? ($pending + 7) / 8 : 0;" in formula
    assert formula.endswith("$NodeDeallocationOption = taskcompletion;")


@pytest.mark.parametrize(
    ("vm_size", "vcpus", "arm64"),
    [
        ("Standard_D2s_v5", 2, False),  # the number is the vCPUs from v3 on
        ("Standard_D8s_v5", 8, False),
        ("Standard_E64-16ds_v4", 16, False),  # constrained: 16 active vCPUs
        ("Standard_NC24ads_A100_v4", 24, False),  # accelerator in the name
        ("Standard_D2ps_v5", 2, True),  # p: Arm64 (Ampere)
        ("Standard_D4plds_v5", 4, True),
        ("Standard_B2ms", 2, False),  # B-series: the number is the vCPUs
        ("Standard_F4s_v2", 4, False),
        ("Standard_D3_v2", None, False),  # a tier, not vCPUs (D3_v2 has 4)
        ("Standard_D11_v2", None, False),  # a tier (D11_v2 has 2)
        ("Standard_G5", None, False),  # a tier (G5 has 32)
        ("Standard_A4", None, False),  # classic A: a tier
        ("Basic_A1", None, False),
        ("Standard_HB120-16rs_v3", 16, False),
    ],
)
def test_vcpus_and_architecture_from_the_size_name(
    vm_size: str, vcpus: int | None, arm64: bool
) -> None:
    assert vm_size_vcpus(vm_size) == vcpus
    assert vm_size_is_arm64(vm_size) is arm64


def test_slots_of_a_size_whose_vcpus_are_unknown_are_not_refused() -> None:
    cfg = parse_stack_config(
        "dev", {"pools": {"p": {"vmSize": "Standard_D3_v2", "taskSlotsPerNode": 16}}}
    )
    assert cfg.pools[0].task_slots_per_node == 16


def test_four_slots_per_vcpu_is_accepted() -> None:
    cfg = parse_stack_config("dev", {"pools": {"p": {"taskSlotsPerNode": 8}}})
    assert cfg.pools[0].task_slots_per_node == 8


def test_arm64_image_on_arm64_size_is_accepted() -> None:
    cfg = parse_stack_config(
        "dev",
        {
            "pools": {
                "p": {
                    "vmSize": "Standard_D2ps_v5",
                    "image": "Canonical:ubuntu-24_04-lts:server-arm64",
                }
            }
        },
    )
    assert cfg.pools[0].node_agent_sku_id == "batch.node.ubuntu 24.04-arm64"


def test_pinned_settings_that_match_are_accepted_and_protect() -> None:
    cfg = parse_stack_config("prod", {"protectData": True, "pinnedSettings": PINS})
    assert cfg.protect_data is True and cfg.warnings == ()


def test_pins_without_protect_data_are_a_warning() -> None:
    cfg = parse_stack_config("dev", {"pinnedSettings": PINS})
    (warning,) = cfg.warnings
    assert (warning.stack, warning.key) == ("dev", "batchflow:pinnedSettings")
    assert cfg.protect_data is False


@pytest.mark.parametrize(
    ("agent_image", "mounts", "warned"),
    [
        # two mounts on Ubuntu 24.04: Azure/Batch#190
        ("Canonical:ubuntu-24_04-lts:server", 2, True),
        # one mount is fine
        ("Canonical:ubuntu-24_04-lts:server", 1, False),
        # two mounts on 22.04 are not affected
        ("Canonical:0001-com-ubuntu-server-jammy:22_04-lts", 2, False),
    ],
)
def test_more_than_one_blob_mount_on_ubuntu_2404_warns(
    agent_image: str, mounts: int, warned: bool
) -> None:
    pool: dict[str, Any] = {
        "image": agent_image,
        "mounts": [{"container": c} for c in ("inputs", "logs")[:mounts]],
    }
    if "jammy" in agent_image:
        pool["nodeAgentSkuId"] = "batch.node.ubuntu 22.04"
    cfg = parse_stack_config("dev", {"pools": {"p": pool}})
    keys = [w.key for w in cfg.warnings]
    assert keys == (["batchflow:pools.p.mounts"] if warned else [])
    if warned:
        assert "Azure/Batch#190" in str(cfg.warnings[0])


def test_storage_firewall_with_every_pool_in_a_subnet_is_accepted() -> None:
    cfg = parse_stack_config(
        "prod",
        {
            "storageFirewall": True,
            "storageAllowedIpRanges": ["52.1.2.3", "52.1.2.0/24"],
            "pools": {"p": {"subnet": SUBNET}},
        },
    )
    assert cfg.storage_firewall is True
    assert cfg.storage_allowed_ip_ranges == ("52.1.2.3", "52.1.2.0/24")
