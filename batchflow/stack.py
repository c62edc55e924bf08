"""The contract between the two halves: the stack outputs, and where a command runs.

The Pulumi program exports the outputs named here (`batchflow/infra/environment.py`
imports them, so a rename is one edit); the CLI reads them back to find the Batch
account, the pools and the storage. This module imports nothing heavy: no Pulumi, no
Azure SDK.

`resolve_target` picks the place a command runs, once per command, in this order:

1. `--stack NAME`: `pulumi stack output --json --stack NAME` (the Pulumi CLI must be
   installed and logged in);
2. `--stack-outputs FILE`: that command's JSON, as a CD pipeline saves it;
3. the `AZURE_BATCH_ENDPOINT` / `AZURE_BATCH_ACCOUNT` / `AZURE_BATCH_ACCESS_KEY` variables
   that `az batch` reads;
4. otherwise `None`: the local engine.

A key (`AZURE_BATCH_ACCESS_KEY`) selects Shared Key authentication for whichever account
was found; without one, Microsoft Entra ID (`DefaultAzureCredential`). Storage likewise:
`AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_KEY` when given, else Entra ID. A key
is held only by the `AzureTarget` (never printed: its `repr` hides it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchflow.exceptions import BatchflowError

__all__ = [
    "BATCH_ACCOUNT_ENDPOINT",
    "BATCH_ACCOUNT_NAME",
    "CONTAINERS",
    "NODE_IDENTITY_RESOURCE_ID",
    "POOL_IDS",
    "RESOURCE_GROUP_NAME",
    "STACK_OUTPUTS",
    "STORAGE_ACCOUNT_NAME",
    "STORAGE_BLOB_ENDPOINT",
    "AzureTarget",
    "TargetError",
    "resolve_target",
]

BATCH_ACCOUNT_NAME = "batchAccountName"
BATCH_ACCOUNT_ENDPOINT = "batchAccountEndpoint"
POOL_IDS = "poolIds"
STORAGE_ACCOUNT_NAME = "storageAccountName"
STORAGE_BLOB_ENDPOINT = "storageBlobEndpoint"
CONTAINERS = "containers"
NODE_IDENTITY_RESOURCE_ID = "nodeIdentityResourceId"
RESOURCE_GROUP_NAME = "resourceGroupName"

#: The stack outputs, in the order the README documents them.
STACK_OUTPUTS = (
    BATCH_ACCOUNT_NAME,
    BATCH_ACCOUNT_ENDPOINT,
    POOL_IDS,
    STORAGE_ACCOUNT_NAME,
    STORAGE_BLOB_ENDPOINT,
    CONTAINERS,
    NODE_IDENTITY_RESOURCE_ID,
    RESOURCE_GROUP_NAME,
)

#: The containers the stack creates, by role (`containers` maps them to names).
CONTAINER_ROLES = ("inputs", "outputs", "logs")


class TargetError(BatchflowError):
    """The target cannot be resolved: no Pulumi CLI, an unreadable outputs file, a
    missing output or variable. Bad input: exit code 2."""

    kind = "input"


@dataclass(frozen=True)
class AzureTarget:
    """A Batch account to run on, with its stack's pools and storage when known."""

    endpoint: str
    account_name: str
    #: Where it came from, for messages: "stack 'dev'", "outputs.json", "AZURE_BATCH_*".
    source: str
    #: Shared Key (from AZURE_BATCH_ACCESS_KEY); None means Microsoft Entra ID.
    account_key: str | None = field(default=None, repr=False)
    pool_ids: Mapping[str, str] = field(default_factory=dict)
    storage_account: str | None = None
    blob_endpoint: str | None = None
    containers: Mapping[str, str] = field(default_factory=dict)
    node_identity: str | None = None
    #: AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY, when given.
    storage_connection_string: str | None = field(default=None, repr=False)
    storage_key: str | None = field(default=None, repr=False)

    def pool_id(self, name: str | None) -> str | None:
        """The Batch pool id for a flow's pool: a logical name of the stack (`render`)
        maps to its id; anything else is taken as a pool id. With no name, the stack's
        only pool (None when it has several or none)."""
        if name is None:
            ids = list(self.pool_ids.values())
            return ids[0] if len(ids) == 1 else None
        return self.pool_ids.get(name, name)

    def describe(self) -> str:
        """`batch account 'bfdev' (stack 'dev')`: for the CLI's header line."""
        return f"batch account '{self.account_name}' ({self.source})"


def resolve_target(
    *,
    stack: str | None = None,
    stack_outputs: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
) -> AzureTarget | None:
    """Where a command runs (see the module docstring); None for the local engine."""
    env = os.environ if environ is None else environ
    if stack is not None:
        outputs = _pulumi_outputs(stack, project_dir)
        return _from_outputs(outputs, f"stack '{stack}'", env)
    if stack_outputs is not None:
        path = Path(stack_outputs)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TargetError(f"--stack-outputs: {path} does not exist") from None
        except OSError as exc:
            raise TargetError(f"--stack-outputs: cannot read {path}: {exc.strerror}") from None
        try:
            outputs = json.loads(text)
        except ValueError as exc:
            raise TargetError(
                f"--stack-outputs: {path} is not JSON (line {getattr(exc, 'lineno', '?')}); "
                "save it with `pulumi stack output --json > FILE`"
            ) from None
        return _from_outputs(outputs, path.name, env)
    endpoint = env.get("AZURE_BATCH_ENDPOINT")
    if endpoint:
        url = _endpoint(endpoint, "AZURE_BATCH_ENDPOINT")
        account = env.get("AZURE_BATCH_ACCOUNT") or _account_from_endpoint(url)
        if not account:
            raise TargetError(
                "AZURE_BATCH_ENDPOINT is set but AZURE_BATCH_ACCOUNT is not, and the endpoint "
                "names no account"
            )
        return AzureTarget(
            endpoint=url,
            account_name=account,
            source="AZURE_BATCH_* variables",
            account_key=_key(env),
            **_storage_settings(env),
        )
    if env.get("AZURE_BATCH_ACCOUNT") or env.get("AZURE_BATCH_ACCESS_KEY"):
        raise TargetError(
            "AZURE_BATCH_ACCOUNT or AZURE_BATCH_ACCESS_KEY is set without AZURE_BATCH_ENDPOINT; "
            "set the endpoint too (https://ACCOUNT.REGION.batch.azure.com), or unset them to "
            "run here"
        )
    return None


def _pulumi_outputs(stack: str, project_dir: str | os.PathLike[str] | None) -> Any:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise TargetError(
            f"--stack {stack}: the Pulumi CLI is not installed here; save the outputs where "
            "it is (`pulumi stack output --json --stack "
            f"{stack} > outputs.json`) and pass --stack-outputs outputs.json"
        )
    try:
        done = subprocess.run(
            [pulumi, "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
            cwd=project_dir,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetError(f"--stack {stack}: `pulumi stack output` failed: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise TargetError(f"--stack {stack}: `pulumi stack output` failed: {why}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise TargetError(f"--stack {stack}: `pulumi stack output --json` gave no JSON") from None


def _from_outputs(outputs: Any, source: str, env: Mapping[str, str]) -> AzureTarget:
    if not isinstance(outputs, dict):
        raise TargetError(f"{source}: the stack outputs must be a JSON object")
    missing = [k for k in (BATCH_ACCOUNT_ENDPOINT, BATCH_ACCOUNT_NAME) if not outputs.get(k)]
    if missing:
        raise TargetError(
            f"{source}: no '{missing[0]}' output; is this a batchflow stack "
            "(`pulumi stack output --json`)?"
        )
    pools = outputs.get(POOL_IDS) or {}
    containers = outputs.get(CONTAINERS) or {}
    if not isinstance(pools, dict) or not all(isinstance(v, str) for v in pools.values()):
        raise TargetError(f"{source}: '{POOL_IDS}' must map logical names to pool ids")
    if not isinstance(containers, dict) or not all(isinstance(v, str) for v in containers.values()):
        raise TargetError(f"{source}: '{CONTAINERS}' must map roles to container names")
    blob = outputs.get(STORAGE_BLOB_ENDPOINT)
    return AzureTarget(
        endpoint=_endpoint(
            str(outputs[BATCH_ACCOUNT_ENDPOINT]), f"{source}: '{BATCH_ACCOUNT_ENDPOINT}'"
        ),
        account_name=str(outputs[BATCH_ACCOUNT_NAME]),
        source=source,
        account_key=_key(env),
        pool_ids=dict(pools),
        storage_account=outputs.get(STORAGE_ACCOUNT_NAME) or None,
        blob_endpoint=str(blob).rstrip("/") if blob else None,
        containers=dict(containers),
        node_identity=outputs.get(NODE_IDENTITY_RESOURCE_ID) or None,
        **_storage_settings(env),
    )


def _key(env: Mapping[str, str]) -> str | None:
    """AZURE_BATCH_ACCESS_KEY, checked to be base64 (as a Shared Key is; never shown)."""
    import base64
    import binascii

    key = env.get("AZURE_BATCH_ACCESS_KEY") or None
    if key is not None:
        try:
            if not base64.b64decode(key, validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise TargetError(
                "AZURE_BATCH_ACCESS_KEY is not an account key (a base64 string, as "
                "`az batch account keys list` shows it)"
            ) from None
    return key


def _storage_settings(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "storage_connection_string": env.get("AZURE_STORAGE_CONNECTION_STRING") or None,
        "storage_key": env.get("AZURE_STORAGE_KEY") or None,
    }


def _endpoint(value: str, what: str) -> str:
    from urllib.parse import urlsplit

    text = value.strip()
    if "://" not in text:
        text = "https://" + text  # az accepts a bare host name
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{what}: '{value.strip()}' is not an http(s) URL")
    return text.rstrip("/")


def _account_from_endpoint(endpoint: str) -> str | None:
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name = host.split(".", 1)[0]
    if "." in host and name and not name[0].isdigit():
        return name
    return None
