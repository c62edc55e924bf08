"""`Pool` under mocks: image, scale, node identity everywhere, start task, mounts, network."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from batchflow.infra.mocks import MockRun
from batchflow.infra.pool import REPLACED_ON_CHANGE, Pool, PoolArgs

from .conftest import RG, SUBSCRIPTION_PREFIX, children_of, config, run

IDENTITY_ID = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/nodes"
)
STACK_SUBNET = (
    f"{SUBSCRIPTION_PREFIX}/resourceGroups/{RG}/providers/Microsoft.Network/"
    "virtualNetworks/vnet/subnets/pools"
)
OTHER_SUBNET = (
    "/subscriptions/1/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
)
BLOB = "https://bfst1.blob.core.windows.net"
NETWORK = {"vnetAddressSpace": "10.42.0.0/16", "subnetAddressPrefix": "10.42.0.0/20"}
POOL = "azure-native:batch:Pool"


def build(pool: dict[str, Any], **stack: Any) -> dict[str, Any]:
    """The pool resource's inputs for one pool's settings."""
    return build_run(pool, **stack).one(POOL).inputs


def build_run(pool: dict[str, Any], **stack: Any) -> MockRun:
    (pool_config,) = config(pools={"p": pool}, **stack).pools

    def program() -> dict[str, pulumi.Output[str]]:
        created = Pool(
            "bf-pool-p",
            PoolArgs(
                resource_group_name=RG,
                account_name="bfdev",
                config=pool_config,
                node_identity_resource_id=IDENTITY_ID,
                storage_account_name="bfst1",
                blob_endpoint=BLOB,
                subnet_id=STACK_SUBNET,
            ),
        )
        return {"pool_id": created.pool_id}

    return run(program)


def test_pool_runs_as_the_node_identity() -> None:
    inputs = build({})
    assert inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [IDENTITY_ID]}
    assert (inputs["accountName"], inputs["resourceGroupName"]) == ("bfdev", RG)


def test_default_image_is_ubuntu_2404_with_its_node_agent() -> None:
    vm = build({})["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["imageReference"] == {
        "publisher": "Canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    }
    assert vm["nodeAgentSkuId"] == "batch.node.ubuntu 24.04"
    assert "containerConfiguration" not in vm


def test_pool_id_and_vm_size_and_slots() -> None:
    result = build_run(
        {
            "id": "render-v2",
            "vmSize": "Standard_D8s_v5",
            "taskSlotsPerNode": 8,
            "nodeFillType": "Pack",
        }
    )
    inputs = result.one(POOL).inputs
    assert (inputs["poolName"], inputs["vmSize"]) == ("render-v2", "Standard_D8s_v5")
    assert inputs["taskSlotsPerNode"] == 8
    assert inputs["taskSchedulingPolicy"] == {"nodeFillType": "Pack"}
    assert result.outputs["pool_id"] == "render-v2"


def test_autoscale_uses_the_default_formula_and_no_fixed_size() -> None:
    scale = build({"autoScale": {"maxDedicatedNodes": 1, "maxSpotNodes": 6}})["scaleSettings"]
    assert set(scale) == {"autoScale"}
    assert scale["autoScale"]["evaluationInterval"] == "PT5M"
    formula = scale["autoScale"]["formula"]
    assert "$TargetDedicatedNodes = min(1, $nodes);" in formula
    assert "$TargetLowPriorityNodes = min(6, max(0, $nodes - $TargetDedicatedNodes));" in formula


def test_custom_formula_and_interval_are_passed_as_written() -> None:
    formula = "$TargetDedicatedNodes = 2;"
    scale = build({"autoScale": {"formula": formula, "evaluationInterval": "PT15M"}})[
        "scaleSettings"
    ]
    assert scale == {"autoScale": {"formula": formula, "evaluationInterval": "PT15M"}}


def test_fixed_size_sets_dedicated_and_spot_targets_and_no_autoscale() -> None:
    scale = build({"targetDedicatedNodes": 2, "targetSpotNodes": 5})["scaleSettings"]
    assert scale == {
        "fixedScale": {
            "targetDedicatedNodes": 2,
            "targetLowPriorityNodes": 5,
            "resizeTimeout": "PT15M",
        }
    }


def test_start_task_reads_stack_containers_through_the_identity() -> None:
    start = build(
        {
            "startTask": {
                "commandLine": "/bin/bash -c 'tools/setup.sh'",
                "resourceFiles": [
                    {"container": "inputs", "blobPrefix": "tools/", "filePath": "tools"},
                    {
                        "httpUrl": "https://example.org/setup.sh",
                        "filePath": "setup.sh",
                        "fileMode": "0755",
                    },
                ],
                "elevated": True,
                "environment": {"STAGE": "dev"},
            }
        }
    )["startTask"]
    assert start["commandLine"] == "/bin/bash -c 'tools/setup.sh'"
    from_container, from_url = start["resourceFiles"]
    assert from_container == {
        "storageContainerUrl": f"{BLOB}/inputs",
        "blobPrefix": "tools/",
        "filePath": "tools",
        "identityReference": {"resourceId": IDENTITY_ID},
    }
    assert from_url == {
        "httpUrl": "https://example.org/setup.sh",
        "filePath": "setup.sh",
        "fileMode": "0755",
    }
    assert start["userIdentity"] == {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}}
    assert start["environmentSettings"] == [{"name": "STAGE", "value": "dev"}]
    assert (start["waitForSuccess"], start["maxTaskRetryCount"]) == (True, 1)


def test_start_task_runs_unelevated_by_default() -> None:
    start = build({"startTask": {"commandLine": "/bin/true"}})["startTask"]
    assert start["userIdentity"]["autoUser"]["elevationLevel"] == "NonAdmin"


def test_blob_mounts_go_through_the_identity_without_keys() -> None:
    (mount,) = build({"mounts": [{"container": "outputs", "path": "out", "options": "-o ro"}]})[
        "mountConfiguration"
    ]
    assert mount == {
        "azureBlobFileSystemConfiguration": {
            "accountName": "bfst1",
            "containerName": "outputs",
            "relativeMountPath": "out",
            "identityReference": {"resourceId": IDENTITY_ID},
            "blobfuseOptions": "-o ro -o allow_other",
        }
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # none given: Microsoft's caching options, and non-admin tasks may read
        (None, "-o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120 -o allow_other"),
        # the stack's options are kept, allow_other added
        ("-o attr_timeout=60", "-o attr_timeout=60 -o allow_other"),
        # already there: not twice
        ("-o allow_other -o ro", "-o allow_other -o ro"),
    ],
)
def test_every_blob_mount_lets_non_admin_tasks_read_it(options: str | None, expected: str) -> None:
    mount: dict[str, Any] = {"container": "inputs"}
    if options is not None:
        mount["options"] = options
    (configured,) = build({"mounts": [mount]})["mountConfiguration"]
    assert configured["azureBlobFileSystemConfiguration"]["blobfuseOptions"] == expected


def test_start_task_with_apt_waits_for_the_dpkg_lock_and_asks_nothing() -> None:
    start = build(
        {
            "startTask": {
                "commandLine": "/bin/bash -c 'apt-get update && apt install -y ffmpeg'",
                "elevated": True,
                "environment": {"NEEDRESTART_MODE": "l"},
            }
        }
    )["startTask"]
    assert start["commandLine"] == (
        "/bin/bash -c 'apt-get -o DPkg::Lock::Timeout=600 update && "
        "apt -o DPkg::Lock::Timeout=600 install -y ffmpeg'"
    )
    variables = {e["name"]: e["value"] for e in start["environmentSettings"]}
    assert variables == {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}


def test_start_task_without_apt_is_passed_as_written() -> None:
    start = build({"startTask": {"commandLine": "/bin/bash -c 'apt-cache policy; ./setup.sh'"}})[
        "startTask"
    ]
    assert start["commandLine"] == "/bin/bash -c 'apt-cache policy; ./setup.sh'"
    assert "environmentSettings" not in start


def test_properties_batch_cannot_update_with_nodes_replace_the_pool_deleting_first() -> None:
    pool = build_run({}).one(POOL)
    assert set(pool.replace_on_changes) == set(REPLACED_ON_CHANGE)
    assert pool.delete_before_replace is True
    # what Batch updates on a pool with nodes stays an in-place update
    for updatable in ("scaleSettings", "startTask", "metadata", "applicationPackages"):
        assert updatable not in pool.replace_on_changes
    # every name is an input of the pool resource as the provider spells it
    inputs = build_run(
        {
            "mounts": [{"container": "inputs"}],
            "subnet": "stack",
            "publicIPAddresses": "NoPublicIPAddresses",
        },
        **NETWORK,
    ).one(POOL)
    assert set(REPLACED_ON_CHANGE) <= set(inputs.inputs)


SPOT4 = {"autoScale": {"maxSpotNodes": 4}}
IN_SUBNET = {"subnet": "stack", "publicIPAddresses": "NoPublicIPAddresses"}


@pytest.mark.parametrize(
    ("before", "after", "replaced"),
    [
        # more Spot nodes: a new formula, updated on a pool with nodes
        (SPOT4, {"autoScale": {"maxSpotNodes": 8}}, False),
        # a formula of one's own, and a new evaluation interval
        (SPOT4, {"autoScale": {"formula": "$TargetDedicatedNodes = 1;"}}, False),
        (SPOT4, {"autoScale": {"maxSpotNodes": 4, "evaluationInterval": "PT10M"}}, False),
        # from autoscale to a fixed size, and a new fixed size
        (SPOT4, {"targetDedicatedNodes": 1}, False),
        ({"targetDedicatedNodes": 1}, {"targetDedicatedNodes": 3, "targetSpotNodes": 2}, False),
        # a new start task
        (
            {"startTask": {"commandLine": "/bin/true"}},
            {"startTask": {"commandLine": "/bin/false", "environment": {"A": "1"}}},
            False,
        ),
        # what Batch changes only on a pool without nodes: a replace
        ({}, {"vmSize": "Standard_D4s_v5"}, True),
        ({}, {"image": "Canonical:ubuntu-22_04-lts:server"}, True),
        ({}, {"taskSlotsPerNode": 2}, True),
        ({}, {"nodeFillType": "Pack"}, True),
        ({}, {"mounts": [{"container": "inputs"}]}, True),
        ({}, {"container": {"images": ["ubuntu:24.04"]}}, True),
        ({}, IN_SUBNET, True),
        (IN_SUBNET, {"subnet": "stack"}, True),  # public IPs again
        ({}, {"interNodeCommunication": True}, True),
        ({}, {"nodeCommunicationMode": "Classic"}, True),
    ],
)
def test_a_change_batch_updates_in_place_is_an_update_any_other_a_replace(
    before: dict[str, Any], after: dict[str, Any], replaced: bool
) -> None:
    # Pulumi replaces a resource when an input listed in its replaceOnChanges differs.
    old = build_run(before, **NETWORK).one(POOL)
    new = build_run(after, **NETWORK).one(POOL)
    changed = {
        k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)
    }
    assert changed, "the change changes no input"
    assert bool(changed & set(new.replace_on_changes)) is replaced, changed


def test_containers_prefetch_images_and_pull_with_the_identity() -> None:
    vm = build(
        {"container": {"images": ["myacr.azurecr.io/render:1"], "registries": ["myacr.azurecr.io"]}}
    )["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm["containerConfiguration"] == {
        "type": "DockerCompatible",
        "containerImageNames": ["myacr.azurecr.io/render:1"],
        "containerRegistries": [
            {"registryServer": "myacr.azurecr.io", "identityReference": {"resourceId": IDENTITY_ID}}
        ],
    }


@pytest.mark.parametrize(
    ("pool", "stack", "expected"),
    [
        # Batch-managed networking: nothing to configure
        ({}, {}, None),
        # the stack's subnet, no public IPs
        (
            {"subnet": "stack", "publicIPAddresses": "NoPublicIPAddresses"},
            NETWORK,
            {
                "subnetId": STACK_SUBNET,
                "publicIPAddressConfiguration": {"provision": "NoPublicIPAddresses"},
                "dynamicVnetAssignmentScope": "none",
            },
        ),
        # a subnet of another network, public IPs managed by Batch
        (
            {"subnet": OTHER_SUBNET},
            {},
            {
                "subnetId": OTHER_SUBNET,
                "publicIPAddressConfiguration": {"provision": "BatchManaged"},
                "dynamicVnetAssignmentScope": "none",
            },
        ),
    ],
)
def test_network_configuration(pool: dict[str, Any], stack: dict[str, Any], expected: Any) -> None:
    assert build(pool, **stack).get("networkConfiguration") == expected


@pytest.mark.parametrize(("enabled", "state"), [(False, "Disabled"), (True, "Enabled")])
def test_node_communication_and_inter_node_communication(enabled: bool, state: str) -> None:
    inputs = build({"interNodeCommunication": enabled})
    assert inputs["interNodeCommunication"] == state
    assert inputs["targetNodeCommunicationMode"] == "Simplified"


def test_the_pool_is_the_components_only_child() -> None:
    result = build_run({})
    assert [c.type for c in children_of(result, "batchflow:azure:Pool")] == [POOL]
