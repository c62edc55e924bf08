"""Azure's naming and format rules for stack settings, and the collector of broken ones.

Each pattern quotes the rule it enforces, so a message can say what is wrong and the
tests can check the boundaries (64-character pool ids, 24-character account names).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from batchflow.durations import iso_seconds
from batchflow.infra.config import PROJECT, ConfigProblem, ImageReference
from batchflow.names import ID_CHARS, did_you_mean, path_problem

T = TypeVar("T")

#: Batch: "up to 64 characters: any combination of alphanumeric characters, hyphens and
#: underscores" (pool ids are case-preserving and compared case-insensitively).
POOL_ID = re.compile(rf"^{ID_CHARS}{{1,64}}$")
#: Storage and Batch account names: 3-24 lowercase letters and digits.
SHORT_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
#: Leaves room for the suffixes ('st', 8 random characters) within 24 characters.
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,11}$")
RESOURCE_GROUP_NAME = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
#: Blob containers: 3-63 lowercase letters, digits and single hyphens, alphanumeric at ends.
CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Standard_D2s_v5, Standard_E64-16ds_v4 (constrained vCPU), Standard_NC24ads_A100_v4.
#: Batch compares VM sizes case-insensitively.
VM_SIZE = re.compile(
    r"^(?:Standard|Basic)_[A-Z][A-Z0-9]*(?:-[0-9]+)?[A-Z0-9]*(?:_[A-Z0-9]+)*$", re.IGNORECASE
)
#: Marketplace publisher, offer and SKU names.
IMAGE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
IMAGE_VERSION = re.compile(r"^(?:latest|\d+\.\d+\.\d+)$")
#: 'batch.node.ubuntu 24.04', 'batch.node.ubuntu 24.04-arm64', 'batch.node.windows amd64'.
NODE_AGENT_SKU = re.compile(r"^batch\.node\.[a-z0-9][a-z0-9 ._-]*$", re.IGNORECASE)
SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/"
    r"virtualNetworks/[^/]+/subnets/[^/]+$",
    re.IGNORECASE,
)
KEY_VAULT_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+$",
    re.IGNORECASE,
)
KEY_VAULT_URL = re.compile(r"^https://[A-Za-z0-9-]{3,24}\.vault\.[a-z0-9.]+/?$")
REGISTRY_SERVER = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d+)?$", re.IGNORECASE)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILE_MODE = re.compile(r"^0?[0-7]{3}$")
_UBUNTU_OFFER = re.compile(r"^ubuntu-(\d\d)_(\d\d)-lts$", re.IGNORECASE)
#: Azure's size naming: family, vCPUs, optional constrained (active) vCPUs, additive features
#: (a AMD, d local disk, p Arm, s premium storage, ...), accelerator, version.
_VM_SIZE_PARTS = re.compile(
    r"^(?:Standard|Basic)_(?P<family>[A-Za-z]+)(?P<vcpus>\d+)(?:-(?P<active>\d+))?"
    r"(?P<features>[A-Za-z]*)(?P<rest>(?:_[A-Za-z0-9]+)*)$"
)
_VERSION = re.compile(r"_v(\d+)$", re.IGNORECASE)
#: Families whose number is a size tier, not a vCPU count (D3_v2 has 4 vCPUs, G5 has 32).
_TIER_NUMBERED_FAMILIES = frozenset({"A", "D", "DS", "G", "GS"})

STORAGE_SKUS = (
    "Standard_LRS",
    "Standard_ZRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
)
POOL_ALLOCATION_MODES = ("BatchService", "UserSubscription")
AUTHENTICATION_MODES = ("AAD", "SharedKey")
NODE_FILL_TYPES = ("Spread", "Pack")
PUBLIC_IP_MODES = ("BatchManaged", "NoPublicIPAddresses")
NODE_COMMUNICATION_MODES = ("Simplified", "Default", "Classic")
CONTAINER_TYPES = ("DockerCompatible", "CriCompatible")


def duration_seconds(text: str) -> float | None:
    """Seconds in an ISO 8601 duration such as PT15M or P1DT2H; None if it is not one."""
    return iso_seconds(text)


def node_agent_for(image: ImageReference) -> str | None:
    """The node agent SKU that runs `image`, for the Ubuntu images Batch supports."""
    arm = "-arm64" if "arm64" in image.sku.lower() else ""
    if image.publisher.lower() == "canonical":
        match = _UBUNTU_OFFER.match(image.offer)
        if match:
            return f"batch.node.ubuntu {match[1]}.{match[2]}{arm}"
    if image.publisher.lower() == "microsoft-dsvm" and image.offer.lower() == "ubuntu-hpc":
        digits = re.fullmatch(r"(\d\d)(\d\d)", image.sku)
        if digits:
            return f"batch.node.ubuntu {digits[1]}.{digits[2]}"
    return None


def vm_size_vcpus(vm_size: str) -> int | None:
    """vCPUs of `vm_size` read from its name, or None where the name does not say.

    `Standard_D8s_v5` -> 8, `Standard_E64-16ds_v4` (constrained) -> 16, `Standard_B2ms` -> 2.
    Sizes of version 2 or older whose number is a tier (A, D/DS v1-v2, G/GS) give None, as do
    names batchflow cannot read: their slots are not checked offline.
    """
    parts = _VM_SIZE_PARTS.match(vm_size)
    if not parts or vm_size.lower().startswith("basic_"):
        return None
    version_match = _VERSION.search(parts["rest"])
    version = int(version_match[1]) if version_match else 1
    family = parts["family"].upper()
    if version < 3 and not (
        family == "B" or (version == 2 and family not in _TIER_NUMBERED_FAMILIES)
    ):
        return None
    vcpus = int(parts["active"] or parts["vcpus"])
    return vcpus or None


def vm_size_is_arm64(vm_size: str) -> bool | None:
    """Whether `vm_size` has Arm64 processors (a `p` among its features, as in D2ps_v5).

    None when the name cannot be read.
    """
    parts = _VM_SIZE_PARTS.match(vm_size)
    if not parts:
        return None
    return "p" in parts["features"].lower()


def image_is_arm64(image: ImageReference, node_agent_sku_id: str) -> bool:
    """Whether a marketplace image (or its node agent) is built for Arm64."""
    return "arm64" in image.sku.lower() or node_agent_sku_id.lower().endswith("arm64")


def relative_path_problem(path: str) -> str | None:
    """Why `path` is not a relative path that stays in its directory (None when it is)."""
    problem = path_problem(path)
    return "is not a relative path" if problem == "is empty" else problem


def cidr_within(inner: str, outer: str) -> bool:
    """Whether CIDR block `inner` lies inside `outer` (both already valid)."""
    a, b = ipaddress.ip_network(inner), ipaddress.ip_network(outer)
    if isinstance(a, ipaddress.IPv4Network) and isinstance(b, ipaddress.IPv4Network):
        return a.subnet_of(b)
    if isinstance(a, ipaddress.IPv6Network) and isinstance(b, ipaddress.IPv6Network):
        return a.subnet_of(b)
    return False


class Problems:
    """Collects the problems of one stack, each with its full key."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.items: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    def add(self, key: str, message: str, fix: str) -> None:
        """Record that `batchflow:<key>` is wrong (once, however often it is read)."""
        problem = ConfigProblem(self.stack, f"{PROJECT}:{key}", message, fix)
        if problem not in self.items:
            self.items.append(problem)

    def warn(self, key: str, message: str, fix: str) -> None:
        """Record that `batchflow:<key>` is allowed but likely to fail on Azure."""
        self.warnings.append(ConfigProblem(self.stack, f"{PROJECT}:{key}", message, fix))

    def unknown_keys(self, where: str, given: Iterable[str], known: Iterable[str]) -> None:
        """A problem for each key of `given` that is not in `known`, with the likely fix."""
        names = list(known)
        for key in given:
            if key in names:
                continue
            close = did_you_mean(key, names)
            fix = f"rename it to '{close}'" if close else f"use one of {', '.join(names)}"
            prefix = f"{where}." if where else ""
            self.add(f"{prefix}{key}", "is not a setting batchflow knows", fix)


class Getter:
    """Typed reads from one settings map: a wrong type becomes a problem and the default."""

    def __init__(self, problems: Problems, where: str, raw: dict[str, Any]) -> None:
        self.problems, self.where, self.raw = problems, where, raw

    def _get(self, key: str, default: T, ok: Callable[[Any], bool], what: str) -> T:
        value = self.raw.get(key)
        if value is None:
            return default
        if not ok(value):
            self.problems.add(f"{self.where}.{key}", f"{value!r} is not {what}", f"use {what}")
            return default
        return value  # type: ignore[no-any-return]

    def text(self, key: str, default: str) -> str:
        """A string setting."""
        return self._get(key, default, lambda v: isinstance(v, str), "a string")

    def number(self, key: str, default: int) -> int:
        """A whole-number setting (a YAML true is not one)."""
        return self._get(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"
        )

    def flag(self, key: str, default: bool) -> bool:
        """A true/false setting."""
        return self._get(key, default, lambda v: isinstance(v, bool), "true or false")

    def items(self, key: str) -> list[Any]:
        """A list setting (empty when missing)."""
        return self._get(key, [], lambda v: isinstance(v, list), "a list")

    def mapping(self, key: str) -> dict[str, Any]:
        """A map setting (empty when missing)."""
        return self._get(key, {}, lambda v: isinstance(v, dict), "a map")

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        """A string setting that must be one of `choices`."""
        value = self.text(key, default)
        if value not in choices:
            self.problems.add(
                f"{self.where}.{key}", f"'{value}' is not allowed", f"use {' or '.join(choices)}"
            )
            return default
        return value
