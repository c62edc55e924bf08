"""The DSL's files on a pool: `inputs=` uploaded once, `outputs=` and hand-offs through
the stack's blob containers.

- `inputs=` files are uploaded to the inputs container under their content hash
  (`<sha256>/<name>`), after a HEAD: a re-run uploads nothing already there. Each becomes
  an `httpUrl` resource file at the name the local engine gives it (a directory's files
  keep their paths below it).
- `outputs=` become `outputFiles` to the outputs container under `JOB/TASK/`, at the same
  relative paths the local engine collects them at (`taskCompletion`: a failed task's
  outputs are kept too, as locally).
- A hand-off (`inputs=[task]`) is a `storageContainerUrl` resource file with the blob
  prefix `JOB/PARENT/`: Batch keeps the blob's full name, so the files land at
  `JOB/PARENT/<path>` in the working directory, the layout the local engine makes.

Nodes read and write with the pool's managed identity (`identityReference` with the
stack's `nodeIdentityResourceId`); without one, with a user-delegation SAS (Microsoft
Entra ID, valid for `SAS_LIFETIME`), never with a SAS signed by an account key. batchflow
itself reaches the storage with `AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_KEY`
when given, else Microsoft Entra ID.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.exceptions import BackendError
from batchflow.redact import redact

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from batchflow.dsl import Job
    from batchflow.stack import AzureTarget

__all__ = ["SAS_LIFETIME", "Stager", "output_path"]

#: How long a user-delegation SAS in a task definition stays valid (Azure's maximum: 7 days).
SAS_LIFETIME = timedelta(days=7)


def output_path(pattern: str) -> str:
    """Where, below `JOB/TASK/`, the files an `outputs=` pattern matches go: the path the
    local engine collects them at (`out/*.png` -> `out`, a literal file -> itself, a path
    outside the working directory -> its name / nothing)."""
    from batchflow.storage.patterns import pattern_has_wildcard

    parts = pattern.replace("\\", "/").split("/")
    if not pattern_has_wildcard(pattern):
        normal = posixpath.normpath(pattern.replace("\\", "/"))
        return parts[-1] if normal == ".." or normal.startswith("../") else normal
    base: list[str] = []
    for part in parts:
        if pattern_has_wildcard(part):
            break
        base.append(part)
    normal = posixpath.normpath("/".join(base)) if base else ""
    return "" if normal in (".", "..") or normal.startswith("../") else normal


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


class Stager:
    """Blob storage of one target for one submission."""

    def __init__(
        self,
        target: AzureTarget,
        *,
        service: BlobServiceClient | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.target = target
        self._service = service
        #: Called with (bytes done, bytes in all) as uploads progress.
        self.progress = progress
        self._sas: dict[str, str] = {}
        self._ensured: set[str] = set()
        #: Files uploaded by the last `stage_inputs`, and those found already there.
        self.uploaded = 0
        self.present = 0

    # -- clients -----------------------------------------------------------------------

    @property
    def service(self) -> BlobServiceClient:
        if self._service is None:
            self._service = self._connect()
        return self._service

    def _connect(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        target = self.target
        if target.storage_connection_string:
            try:
                return BlobServiceClient.from_connection_string(target.storage_connection_string)
            except ValueError:
                raise BackendError(
                    "AZURE_STORAGE_CONNECTION_STRING is not a storage connection string",
                    code="InvalidPropertyValue",
                ) from None
        if not target.blob_endpoint:
            raise BackendError(
                "inputs= and outputs= need the stack's storage (the storageBlobEndpoint "
                f"output); {target.describe()} has none",
                code="InvalidPropertyValue",
            )
        if target.storage_key:
            import base64
            import binascii

            try:
                base64.b64decode(target.storage_key, validate=True)
            except (binascii.Error, ValueError):
                raise BackendError(
                    "AZURE_STORAGE_KEY is not a storage account key (a base64 string)",
                    code="InvalidPropertyValue",
                ) from None
            if not target.storage_account:
                raise BackendError(
                    "AZURE_STORAGE_KEY needs the storage account's name (the "
                    "storageAccountName output)",
                    code="InvalidPropertyValue",
                )
            credential: Any = {
                "account_name": target.storage_account,
                "account_key": target.storage_key,
            }
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return BlobServiceClient(target.blob_endpoint, credential=credential)

    def container(self, role: str) -> ContainerClient:
        """The container of `role` (inputs, outputs)."""
        return self.service.get_container_client(self.target.containers.get(role) or role)

    # -- what nodes use ----------------------------------------------------------------

    def _access(self, role: str, permission: str) -> tuple[str, dict[str, Any]]:
        """The container URL nodes use for `role` and the fields that grant access: the
        pool's identity, else a user-delegation SAS in the URL."""
        url = self.container(role).url.split("?", 1)[0]
        if self.target.node_identity:
            return url, {"identityReference": {"resourceId": self.target.node_identity}}
        return f"{url}?{self._delegation_sas(role, permission)}", {}

    def _delegation_sas(self, role: str, permission: str) -> str:
        key = f"{role}:{permission}"
        if key in self._sas:
            return self._sas[key]
        if self.target.storage_connection_string or self.target.storage_key:
            raise BackendError(
                "the nodes have no identity to reach the storage (no "
                "nodeIdentityResourceId output), and batchflow signs no SAS with an account "
                "key; deploy the stack's node identity, or sign in with Microsoft Entra ID "
                "(unset AZURE_STORAGE_KEY / AZURE_STORAGE_CONNECTION_STRING) for a "
                "user-delegation SAS",
                code="InvalidPropertyValue",
            )
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        start = datetime.now(UTC) - timedelta(minutes=5)
        expiry = start + SAS_LIFETIME
        try:
            delegation = self.service.get_user_delegation_key(start, expiry)
        except Exception as exc:
            raise BackendError(
                f"cannot get a user-delegation key from the storage account: "
                f"{redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}",
                code="AuthenticationFailed",
            ) from None
        container = self.container(role)
        sas = generate_container_sas(
            container.account_name or "",
            container.container_name,
            user_delegation_key=delegation,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=expiry,
            start=start,
        )
        self._sas[key] = sas
        return sas

    # -- inputs ------------------------------------------------------------------------

    def stage_inputs(self, job: Job) -> dict[tuple[str, ...], list[dict[str, Any]]]:
        """Upload every distinct `inputs=` file of the job once (by content); the
        resource files of each distinct `inputs=` set."""
        from batchflow.storage import check_inputs

        base = Path(job.inputs_dir())
        sets = {inputs for inputs in job._inputs if inputs}
        if not sets:
            return {}
        # (local file, name in the working directory) of each input set
        files: dict[tuple[str, ...], list[tuple[Path, str]]] = {}
        for inputs in sets:
            placed: list[tuple[Path, str]] = []
            for source, name in check_inputs(inputs, base, job_id=job.id):
                if source.is_dir():
                    for folder, _dirs, names in os.walk(source):
                        for file_name in sorted(names):
                            path = Path(folder) / file_name
                            relative = path.relative_to(source).as_posix()
                            placed.append((path, f"{name}/{relative}"))
                else:
                    placed.append((source, name))
            files[inputs] = placed
        digests: dict[Path, str] = {}
        for placed in files.values():
            for path, _name in placed:
                if path not in digests:
                    digests[path] = _digest(path)
        inputs_container = self.container("inputs")
        self._ensure_once(inputs_container)
        blobs = {path: f"{digests[path]}/{path.name}" for path in digests}
        self._upload(inputs_container, blobs)
        url, grant = self._access("inputs", "r")
        base_url, _, query = url.partition("?")
        out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for inputs, placed in files.items():
            out[inputs] = [
                {
                    "httpUrl": f"{base_url}/{blobs[path]}" + (f"?{query}" if query else ""),
                    "filePath": name,
                    **grant,
                }
                for path, name in placed
            ]
        return out

    def _ensure_once(self, client: ContainerClient) -> None:
        """Create the container if it is missing (the stack creates them; Azurite not)."""
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        if client.container_name in self._ensured:
            return
        self._ensured.add(client.container_name)
        try:
            if not client.exists():
                with contextlib.suppress(ResourceExistsError):
                    client.create_container()
        except HttpResponseError as exc:
            raise BackendError(
                f"storage container '{client.container_name}': {redact(exc.message or '')}",
                code="InvalidPropertyValue",
            ) from None

    def _upload(self, client: ContainerClient, blobs: dict[Path, str]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        missing: list[tuple[Path, str]] = []
        for path, name in blobs.items():
            try:
                client.get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                missing.append((path, name))
        self.present = len(blobs) - len(missing)
        self.uploaded = len(missing)
        total = sum(path.stat().st_size for path, _ in missing)
        done = 0
        for path, name in missing:
            with open(path, "rb") as data:
                client.upload_blob(name, data, overwrite=True)
            done += path.stat().st_size
            if self.progress is not None:
                self.progress(done, total)

    # -- outputs and hand-offs ---------------------------------------------------------

    def output_files(
        self, job_id: str, task_id: str, patterns: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """`outputFiles` that put what `patterns` match under `JOB/TASK/` in the outputs
        container."""
        self._ensure_once(self.container("outputs"))
        url, grant = self._access("outputs", "rcw")
        files: list[dict[str, Any]] = []
        for pattern in patterns:
            below = output_path(pattern)
            path = f"{job_id}/{task_id}" + (f"/{below}" if below else "")
            files.append(
                {
                    "filePattern": pattern,
                    "destination": {"container": {"containerUrl": url, "path": path, **grant}},
                    "uploadOptions": {"uploadCondition": "taskCompletion"},
                }
            )
        return files

    def handoff_files(self, job_id: str, parents: tuple[str, ...]) -> list[dict[str, Any]]:
        """Resource files that bring each parent's outputs to `JOB/PARENT/...`."""
        url, grant = self._access("outputs", "rl")
        return [
            {"storageContainerUrl": url, "blobPrefix": f"{job_id}/{parent}/", **grant}
            for parent in parents
        ]

    def read_output(self, job_id: str, task_id: str, path: str) -> bytes | None:
        """A collected output of a task (`wd/out.csv` or `out.csv`), None if absent."""
        from azure.core.exceptions import ResourceNotFoundError

        name = path[3:] if path.startswith("wd/") else path
        blob = self.container("outputs").get_blob_client(f"{job_id}/{task_id}/{name}")
        try:
            return bytes(blob.download_blob().readall())
        except ResourceNotFoundError:
            return None

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None
