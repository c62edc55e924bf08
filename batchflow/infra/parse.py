"""Raw stack settings -> `StackConfig`, or `StackConfigError` naming the stack, key and fix.

Values arrive as Pulumi hands them to a program (strings, JSON for objects and arrays) or
already typed (from YAML); both are accepted. Every problem is collected, so one run
reports all of them, and nothing is created while any remains.

>>> parse_stack_config("dev", {"pools": {"render": {"vmSize": "Standard_D2s_v5"}}}).pools[0].id
'render'
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from batchflow.infra.config import (
    PINNED_SETTINGS,
    SETTINGS,
    ContainerNames,
    NetworkConfig,
    PoolConfig,
    Setting,
    StackConfig,
    StackConfigError,
)
from batchflow.infra.parse_pools import parse_pools
from batchflow.infra.rules import (
    AUTHENTICATION_MODES,
    CONTAINER_NAME,
    KEY_VAULT_ID,
    KEY_VAULT_URL,
    NAME_PREFIX,
    POOL_ALLOCATION_MODES,
    RESOURCE_GROUP_NAME,
    SHORT_ACCOUNT_NAME,
    STORAGE_SKUS,
    Problems,
    cidr_within,
)

__all__ = ["parse_stack_config"]

_MISSING = object()
_TYPE_WORDS = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "a whole number",
    "array": "a YAML list",
    "object": "a YAML map",
}


def parse_stack_config(stack: str, raw: Mapping[str, Any]) -> StackConfig:
    """Validate a stack's settings (keys without the `batchflow:` namespace).

    Missing keys take their `SETTINGS` default. Raises `StackConfigError` with every
    problem found.
    """
    problems = Problems(stack)
    problems.unknown_keys("", raw, [s.key for s in SETTINGS])
    v = {s.key: _typed(problems, s, raw.get(s.key, _MISSING)) for s in SETTINGS}

    if not NAME_PREFIX.match(v["namePrefix"]):
        problems.add(
            "namePrefix",
            f"'{v['namePrefix']}' is not 2-12 lowercase letters and digits starting with a letter",
            "use something like 'bf" + re.sub(r"[^a-z0-9]", "", stack.lower())[:10] + "'",
        )
    for key, pattern, rule in (
        ("storageAccountName", SHORT_ACCOUNT_NAME, "3-24 lowercase letters and digits"),
        ("batchAccountName", SHORT_ACCOUNT_NAME, "3-24 lowercase letters and digits"),
        ("resourceGroupName", RESOURCE_GROUP_NAME, "1-90 letters, digits and '-_.()'"),
    ):
        if v[key] and not pattern.match(v[key]):
            problems.add(key, f"'{v[key]}' is not {rule}", f"use {rule}, or leave it empty")
    if not v["location"].strip():
        problems.add("location", "is empty", "set an Azure region such as 'westeurope'")
    if v["storageSku"] not in STORAGE_SKUS:
        problems.add(
            "storageSku",
            f"'{v['storageSku']}' is not a storage SKU for blobs",
            f"use one of {', '.join(STORAGE_SKUS)}",
        )
    if not 0 <= v["blobSoftDeleteDays"] <= 365:
        problems.add("blobSoftDeleteDays", "must be 0 to 365", "use 7, or 0 to turn it off")

    containers = ContainerNames(v["inputsContainer"], v["outputsContainer"], v["logsContainer"])
    for role, name in containers.as_dict().items():
        if not CONTAINER_NAME.match(name):
            problems.add(
                f"{role}Container",
                f"'{name}' is not a blob container name",
                "use 3-63 lowercase letters, digits and single hyphens",
            )
    if len(set(containers.as_dict().values())) < 3:
        problems.add(
            "outputsContainer", "names the same container as another role", "give each its own"
        )

    tags = _tags(problems, v["tags"])
    key_vault_id, key_vault_url = _allocation_mode(problems, v)
    auth_modes = _authentication_modes(problems, v["batchAuthenticationModes"])
    network = _network(problems, v)
    pools = parse_pools(problems, v["pools"], network, containers)
    ip_ranges = _storage_firewall(problems, v, pools)
    _pins(problems, v)

    if problems.items:
        raise StackConfigError(problems.items)
    return StackConfig(
        stack=stack,
        location=v["location"],
        name_prefix=v["namePrefix"],
        resource_group_name=v["resourceGroupName"] or None,
        tags=tags,
        storage_account_name=v["storageAccountName"] or None,
        storage_sku=v["storageSku"],
        storage_shared_key_access=v["storageSharedKeyAccess"],
        blob_soft_delete_days=v["blobSoftDeleteDays"],
        containers=containers,
        batch_account_name=v["batchAccountName"] or None,
        pool_allocation_mode=v["poolAllocationMode"],
        key_vault_id=key_vault_id,
        key_vault_url=key_vault_url,
        authentication_modes=auth_modes,
        public_network_access=v["batchPublicNetworkAccess"],
        network=network,
        pools=pools,
        protect_data=v["protectData"],
        storage_firewall=v["storageFirewall"],
        storage_allowed_ip_ranges=ip_ranges,
        warnings=tuple(problems.warnings),
    )


def _typed(problems: Problems, setting: Setting, value: Any) -> Any:
    """`value` converted to the setting's type; the default (and a problem) when it can't be."""
    if value is _MISSING or value is None:
        return setting.default
    kind = setting.type
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
    if kind in ("object", "array"):
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
        if isinstance(parsed, dict if kind == "object" else list):
            if kind == "array" and not all(isinstance(item, str) for item in parsed):
                problems.add(setting.key, "holds a value that is not a string", "list strings")
                return setting.default
            return _string_keys(parsed)
    words = _TYPE_WORDS[kind]
    problems.add(setting.key, f"{value!r} is not {words}", f"write it as {words}")
    return setting.default


def _string_keys(value: Any) -> Any:
    """`value` with every map key a string, as Pulumi's JSON hands maps to the program.

    A YAML stack file may say `pools: {1: {}}`; the program sees `{"1": {}}`, so the plan does too.
    """
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _tags(problems: Problems, raw: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, str | int | float | bool) or re.search(r"[<>%&\\?/]", name):
            problems.add(
                f"tags.{name}",
                "is not a valid tag",
                "use a name without <>%&\\?/ and a plain text value",
            )
            continue
        tags[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return tags


def _allocation_mode(problems: Problems, v: dict[str, Any]) -> tuple[str | None, str | None]:
    mode, vault_id, vault_url = v["poolAllocationMode"], v["keyVaultId"], v["keyVaultUrl"]
    if mode not in POOL_ALLOCATION_MODES:
        problems.add(
            "poolAllocationMode",
            f"'{mode}' is not a pool allocation mode",
            f"use {' or '.join(POOL_ALLOCATION_MODES)}",
        )
        return None, None
    if mode == "BatchService":
        for key in ("keyVaultId", "keyVaultUrl"):
            if v[key]:
                problems.add(
                    key,
                    "is set, but a BatchService account uses no Key Vault",
                    "remove it, or set poolAllocationMode to UserSubscription",
                )
        return None, None
    if not KEY_VAULT_ID.match(vault_id):
        problems.add(
            "keyVaultId",
            "a UserSubscription account needs the resource id of a Key Vault",
            "create a vault in the account's region, give 'Microsoft Azure Batch' Get, List, "
            "Set and Delete on its secrets, then `pulumi config set keyVaultId "
            "/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>`",
        )
    if not KEY_VAULT_URL.match(vault_url):
        problems.add(
            "keyVaultUrl",
            "a UserSubscription account needs the Key Vault's URL",
            "`pulumi config set keyVaultUrl https://<vault>.vault.azure.net/`",
        )
    return vault_id, vault_url


def _authentication_modes(problems: Problems, modes: list[str]) -> tuple[str, ...]:
    result: list[str] = []
    for mode in modes:
        if mode == "TaskAuthenticationToken":
            problems.add(
                "batchAuthenticationModes",
                "TaskAuthenticationToken was retired by Azure Batch",
                "remove it; tasks reach storage and registries through the node identity",
            )
        elif mode not in AUTHENTICATION_MODES:
            problems.add(
                "batchAuthenticationModes",
                f"{mode!r} is not an authentication mode",
                f"use {' and/or '.join(AUTHENTICATION_MODES)}",
            )
        elif mode not in result:
            result.append(mode)
    if not modes:
        problems.add(
            "batchAuthenticationModes",
            "is empty, so no client could reach the account",
            "use [AAD] (Entra ID), or [AAD, SharedKey] in a dev stack",
        )
    return tuple(result)


def _network(problems: Problems, v: dict[str, Any]) -> NetworkConfig | None:
    space, prefix = v["vnetAddressSpace"], v["subnetAddressPrefix"]
    if not space and not prefix:
        return None
    valid = True
    for key, value in (("vnetAddressSpace", space), ("subnetAddressPrefix", prefix)):
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            valid = False
            problems.add(
                key,
                f"{value!r} is not a CIDR block" if value else "is empty while the other is set",
                "set both (e.g. vnetAddressSpace 10.42.0.0/16, subnetAddressPrefix "
                "10.42.0.0/20) or neither",
            )
    if valid:
        if not cidr_within(prefix, space):
            problems.add(
                "subnetAddressPrefix",
                f"{prefix} is not inside vnetAddressSpace {space}",
                "pick a prefix inside the virtual network's address space",
            )
        elif ipaddress.ip_network(prefix).num_addresses < 32:
            problems.add(
                "subnetAddressPrefix",
                f"{prefix} leaves too few addresses for nodes",
                "use /24 or larger: each node takes one address, Azure reserves five",
            )
    return NetworkConfig(space, prefix, v["natGateway"])


#: What a change of each pinned setting would replace.
_REPLACES = {
    "location": "the resource group and the storage account",
    "namePrefix": "every resource, the resource group and the storage account among them",
    "resourceGroupName": "the resource group and everything in it",
    "storageAccountName": "the storage account",
}


def _pins(problems: Problems, v: dict[str, Any]) -> None:
    """With protectData, each setting that would replace protected data must equal its pin."""
    pins = v["pinnedSettings"]
    if not v["protectData"]:
        if pins:
            problems.warn(
                "pinnedSettings",
                "is set, but protectData is false, so nothing checks it",
                "set protectData: true, or remove pinnedSettings",
            )
        return
    problems.unknown_keys("pinnedSettings", pins, PINNED_SETTINGS)
    missing = [key for key in PINNED_SETTINGS if key not in pins]
    if missing:
        current = ", ".join(f"{key}: {v[key]!r}" for key in PINNED_SETTINGS)
        problems.add(
            "pinnedSettings",
            f"protectData is true, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not pinned, so a change could replace "
            "the protected resource group or storage account unnoticed",
            f"pin the values they were created with, e.g. pinnedSettings: {{{current}}}",
        )
    for key in PINNED_SETTINGS:
        if key not in pins:
            continue
        if not isinstance(pins[key], str):
            problems.add(
                f"pinnedSettings.{key}",
                f"{pins[key]!r} is not a string",
                f"pin the value {key} was created with, e.g. {key}: {v[key]!r}",
            )
            continue
        if pins[key] == v[key]:
            continue
        problems.add(
            key,
            f"{v[key]!r} differs from {pins[key]!r} in pinnedSettings: it would replace "
            f"{_REPLACES[key]}, deleting the data protectData keeps",
            f"set it back to {pins[key]!r}; to replace them on purpose, copy the data out, "
            "`pulumi up` with protectData: false, then change both (README: Protected data)",
        )


def _storage_firewall(
    problems: Problems, v: dict[str, Any], pools: tuple[PoolConfig, ...]
) -> tuple[str, ...]:
    """The IP ranges let through the storage firewall; pools it would cut off are problems."""
    ranges = tuple(v["storageAllowedIpRanges"])
    for value in ranges:
        reason = _ip_rule_problem(value)
        if reason:
            problems.add(
                "storageAllowedIpRanges",
                f"{value!r} {reason}",
                "list public IPv4 addresses (e.g. 52.1.2.3) or ranges up to /30 (e.g. 52.1.2.0/24)",
            )
    if not v["storageFirewall"]:
        if ranges:
            problems.add(
                "storageAllowedIpRanges",
                "is set, but storageFirewall is false, so every address may connect anyway",
                "set storageFirewall: true, or remove storageAllowedIpRanges",
            )
        return ranges
    for pool in pools:
        if not pool.subnet:
            problems.add(
                f"pools.{pool.name}.subnet",
                "is empty, so with storageFirewall the pool's nodes (Batch-managed public IPs) "
                "could not reach storage",
                "set subnet to 'stack' (with vnetAddressSpace) or to a subnet resource id, "
                "or set storageFirewall: false",
            )
    return ranges


def _ip_rule_problem(value: str) -> str | None:
    """Why the storage firewall would refuse `value` as an IP rule (None when it takes it)."""
    try:
        block = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return "is not an IPv4 address or CIDR range"
    if not isinstance(block, ipaddress.IPv4Network):
        return "is IPv6, which storage IP rules do not take"
    if not block.is_global:
        return "is not a public address (private ranges reach storage through a subnet)"
    if "/" in value and block.prefixlen > 30:
        return "is a /31 or /32 range, which storage IP rules do not take"
    return None
