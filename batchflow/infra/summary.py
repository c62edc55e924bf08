"""The settings of a planned resource that a reviewer checks, from its provider inputs.

One function per resource type, each picking the few inputs that decide security, cost
and behaviour (TLS, public access, SKU, scale, subnet). Unknown types get none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from batchflow.infra.identity import ROLE_NAMES

__all__ = ["settings_of"]

Inputs = Mapping[str, Any]


def settings_of(type_token: str, inputs: Inputs) -> dict[str, Any]:
    """The key settings of a resource of `type_token` with these inputs."""
    summarize = _SUMMARIES.get(type_token)
    if summarize is None:
        return {}
    return {k: v for k, v in summarize(inputs).items() if v is not None}


def _resource_group(i: Inputs) -> dict[str, Any]:
    return {"location": i.get("location"), "name": i.get("resourceGroupName")}


def _storage_account(i: Inputs) -> dict[str, Any]:
    return {
        "kind": i.get("kind"),
        "sku": (i.get("sku") or {}).get("name"),
        "httpsOnly": i.get("enableHttpsTrafficOnly"),
        "minimumTls": i.get("minimumTlsVersion"),
        "publicBlobAccess": i.get("allowBlobPublicAccess"),
        "sharedKeyAccess": i.get("allowSharedKeyAccess"),
        "network": _storage_network(i.get("networkRuleSet") or {}),
    }


def _storage_network(rules: Inputs) -> str:
    """'open to all networks' or 'deny; allow 1 subnet, 2 IP ranges, AzureServices'."""
    if rules.get("defaultAction") != "Deny":
        return "open to all networks"
    allowed = [
        f"{len(rules.get('virtualNetworkRules') or [])} subnet(s)",
        f"{len(rules.get('ipRules') or [])} IP range(s)",
    ]
    if rules.get("bypass"):
        allowed.append(str(rules["bypass"]))
    return "deny; allow " + ", ".join(allowed)


def _lock(i: Inputs) -> dict[str, Any]:
    scope = str(i.get("scope", ""))
    return {"level": i.get("level"), "on": "/".join(scope.split("/")[-2:]) if scope else None}


def _blob_service(i: Inputs) -> dict[str, Any]:
    policy = i.get("deleteRetentionPolicy") or {}
    return {"softDeleteDays": policy.get("days") if policy.get("enabled") else 0}


def _container(i: Inputs) -> dict[str, Any]:
    return {"name": i.get("containerName"), "publicAccess": i.get("publicAccess")}


def _role_assignment(i: Inputs) -> dict[str, Any]:
    role = str(i.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
    scope = str(i.get("scope", ""))
    return {
        "role": ROLE_NAMES.get(role, role),
        "principalType": i.get("principalType"),
        "scope": "/".join(scope.split("/")[-2:]) if scope else None,
        "name": i.get("roleAssignmentName"),
    }


def _batch_account(i: Inputs) -> dict[str, Any]:
    return {
        "poolAllocationMode": i.get("poolAllocationMode"),
        "authenticationModes": i.get("allowedAuthenticationModes"),
        "publicNetworkAccess": i.get("publicNetworkAccess"),
        "autoStorage": (i.get("autoStorage") or {}).get("authenticationMode"),
    }


def _pool(i: Inputs) -> dict[str, Any]:
    vm = (i.get("deploymentConfiguration") or {}).get("virtualMachineConfiguration") or {}
    image = vm.get("imageReference") or {}
    scale = i.get("scaleSettings") or {}
    network = i.get("networkConfiguration") or {}
    start = i.get("startTask") or {}
    if "autoScale" in scale:
        scale_text = _autoscale_text(scale["autoScale"])
    else:
        fixed = scale.get("fixedScale") or {}
        scale_text = (
            f"fixed {fixed.get('targetDedicatedNodes', 0)} dedicated + "
            f"{fixed.get('targetLowPriorityNodes', 0)} spot"
        )
    return {
        "id": i.get("poolName"),
        "vmSize": i.get("vmSize"),
        "image": ":".join(str(image.get(k)) for k in ("publisher", "offer", "sku", "version")),
        "scale": scale_text,
        "taskSlotsPerNode": i.get("taskSlotsPerNode"),
        "identity": (i.get("identity") or {}).get("type"),
        "subnet": "yes" if network.get("subnetId") else None,
        "publicIPs": (network.get("publicIPAddressConfiguration") or {}).get("provision"),
        "nodeCommunication": i.get("targetNodeCommunicationMode"),
        "startTask": start.get("commandLine"),
        "mounts": len(i.get("mountConfiguration") or []) or None,
        "containerImages": len(
            vm.get("containerConfiguration", {}).get("containerImageNames") or []
        )
        or None,
    }


def _autoscale_text(auto: Inputs) -> str:
    """'autoscale 0-4 dedicated + 0-32 spot' for batchflow's default formula."""
    formula = str(auto.get("formula", ""))
    every = f", every {auto.get('evaluationInterval')}"
    dedicated = re.search(r"\$TargetDedicatedNodes = min\((\d+), \$nodes\)", formula)
    spot = re.search(r"\$TargetLowPriorityNodes = min\((\d+),", formula)
    if dedicated and spot:
        return f"autoscale 0-{dedicated[1]} dedicated + 0-{spot[1]} spot{every}"
    return f"autoscale (custom formula){every}"


def _vnet(i: Inputs) -> dict[str, Any]:
    return {"addressSpace": (i.get("addressSpace") or {}).get("addressPrefixes")}


def _subnet(i: Inputs) -> dict[str, Any]:
    return {
        "prefix": i.get("addressPrefix"),
        "natGateway": "yes" if i.get("natGateway") else "no",
        "defaultOutboundAccess": i.get("defaultOutboundAccess"),
        "serviceEndpoints": [e.get("service") for e in i.get("serviceEndpoints") or []] or None,
    }


def _nat_gateway(i: Inputs) -> dict[str, Any]:
    return {"sku": (i.get("sku") or {}).get("name")}


def _public_ip(i: Inputs) -> dict[str, Any]:
    return {
        "sku": (i.get("sku") or {}).get("name"),
        "allocation": i.get("publicIPAllocationMethod"),
    }


_SUMMARIES: Mapping[str, Callable[[Inputs], dict[str, Any]]] = {
    "azure-native:resources:ResourceGroup": _resource_group,
    "azure-native:storage:StorageAccount": _storage_account,
    "azure-native:storage:BlobServiceProperties": _blob_service,
    "azure-native:storage:BlobContainer": _container,
    "azure-native:authorization:RoleAssignment": _role_assignment,
    "azure-native:authorization:ManagementLockByScope": _lock,
    "azure-native:batch:BatchAccount": _batch_account,
    "azure-native:batch:Pool": _pool,
    "azure-native:network:VirtualNetwork": _vnet,
    "azure-native:network:Subnet": _subnet,
    "azure-native:network:NatGateway": _nat_gateway,
    "azure-native:network:PublicIPAddress": _public_ip,
}
