"""Output files: what Batch uploads to blob containers after a task's process exits.

For each `outputFiles` entry (wire dict, camelCase keys) whose `uploadCondition` holds
(`taskSuccess`: exit code 0, `taskFailure`: non-zero, `taskCompletion`: any; any case):

- the files `filePattern` matches (see `batchflow.storage.patterns`) are uploaded to
  `destination.container.containerUrl` (a SAS URL with write permission);
- blob names: a pattern without wildcards uploads its one file to `path` itself (the full
  blob name) or, without `path`, to its base name; a pattern with wildcards puts each match
  under `path` as a prefix, keeping its sub-path below the pattern's non-wildcard part
  (`out/**/*.txt` with path `p` sends `out/a/b.txt` to `p/a/b.txt`);
- `uploadHeaders` become the blob's properties (`x-ms-blob-content-type` and friends,
  `x-ms-meta-*` metadata, `x-ms-access-tier`, `x-ms-tags`); other headers are sent as is.

A pattern that matches nothing is not an error. Every attempt logs to `fileuploadout.txt`
(one line per file) and `fileuploaderr.txt` (one JSON object per failure) in the task
directory, never with a SAS token. A failure raises `FileUploadError` once every entry has
been tried: `FileUploadContainerNotFound`, `FileUploadAuthenticationFailed` (401/403) or
`FileUploadMiscError`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl

from batchflow.exceptions import FileUploadError
from batchflow.redact import redact
from batchflow.storage.blobs import (
    AutoStorage,
    ContainerClients,
    TransferPolicy,
    is_timeout,
    public_url,
    status_of,
    storage_code,
)
from batchflow.storage.patterns import match_files, pattern_has_wildcard

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

__all__ = ["blob_name", "should_upload", "upload_output_files"]

OUT_LOG = "fileuploadout.txt"
ERR_LOG = "fileuploaderr.txt"

_FAILURES: dict[str, tuple[str, str]] = {
    "FileUploadContainerNotFound": (
        "usererror",
        "One of the specified Azure container(s) was not found while attempting to upload an "
        "output file",
    ),
    "FileUploadAuthenticationFailed": (
        "usererror",
        "Access to one of the specified Azure container(s) was denied while attempting to "
        "upload an output file",
    ),
    "FileUploadMiscError": (
        "servererror",
        "An error was encountered while attempting to upload an output file",
    ),
}

# uploadHeaders that are blob properties, by lowercase header name -> ContentSettings field.
# The plain HTTP names are accepted too; the x-ms-blob-* spelling wins when both are given.
_PLAIN_PROPERTIES = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "cache-control": "cache_control",
}
_BLOB_PROPERTIES = {
    "x-ms-blob-content-type": "content_type",
    "x-ms-blob-content-encoding": "content_encoding",
    "x-ms-blob-content-language": "content_language",
    "x-ms-blob-content-disposition": "content_disposition",
    "x-ms-blob-cache-control": "cache_control",
    "x-ms-blob-content-md5": "content_md5",
}


def should_upload(condition: str, exit_code: int) -> bool:
    """Whether an `uploadCondition` (any case) holds for a process that exited `exit_code`."""
    normal = condition.lower()
    if normal == "tasksuccess":
        return exit_code == 0
    if normal == "taskfailure":
        return exit_code != 0
    if normal == "taskcompletion":
        return True
    raise ValueError(
        f"uploadCondition '{condition}' is not one of taskSuccess, taskFailure, taskCompletion"
    )


def blob_name(pattern: str, path: str | None, name: str) -> str:
    """The blob a matched file goes to (see the module docstring for the rules)."""
    if not path:
        return name
    if not pattern_has_wildcard(pattern):
        return path
    return f"{path.rstrip('/')}/{name}"


class _Log:
    """fileuploadout.txt and fileuploaderr.txt of one upload attempt."""

    def __init__(self, task_dir: Path) -> None:
        self.task_dir = task_dir
        self.out: IO[str] = open(task_dir / OUT_LOG, "w", encoding="utf-8")  # noqa: SIM115
        self.err: IO[str] = open(task_dir / ERR_LOG, "w", encoding="utf-8")  # noqa: SIM115

    def info(self, text: str) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
        self.out.write(f"{stamp} {redact(text)}\n")

    def error(self, record: dict[str, object]) -> None:
        self.err.write(redact(json.dumps(record, sort_keys=True)) + "\n")
        self.info(f"ERROR {record['code']}: {record['message']}")

    def shown(self, path: Path) -> str:
        normal = Path(os.path.normpath(path))
        try:
            return normal.relative_to(os.path.normpath(self.task_dir)).as_posix()
        except ValueError:
            return str(normal)

    def close(self) -> None:
        self.out.close()
        self.err.close()


def upload_output_files(
    output_files: Sequence[Mapping[str, Any]],
    task_dir: Path,
    *,
    exit_code: int | None,
    env: Mapping[str, str] | None = None,
    auto_storage: AutoStorage | None = None,
    policy: TransferPolicy | None = None,
) -> None:
    """Upload Batch `outputFiles` after a task ran; its working dir is `task_dir / "wd"`.

    `exit_code` is the process's exit code; `None` means the process never ran (e.g. a
    pre-processing error), and then nothing is uploaded and no log is written, as on Batch.
    `env` is the task's environment, for `$VAR` in patterns. Raises `FileUploadError` (the
    first failure) after trying every entry.
    """
    if not output_files or exit_code is None:
        return
    policy = policy or TransferPolicy()
    working_dir = task_dir / "wd"
    try:
        log = _Log(task_dir)
    except OSError as exc:
        raise FileUploadError(
            "FileUploadMiscError",
            f"cannot write the upload logs in '{task_dir}': {exc.strerror or exc}",
            category="servererror",
        ) from None
    clients = ContainerClients(policy, auto_storage)
    first: FileUploadError | None = None
    try:
        for index, spec in enumerate(output_files):
            try:
                _upload_entry(index, spec, working_dir, exit_code, env, clients, log)
            except FileUploadError as error:
                first = first or error
    finally:
        clients.close()
        log.close()
    if first is not None:
        raise first


def _upload_entry(
    index: int,
    spec: Mapping[str, Any],
    working_dir: Path,
    exit_code: int,
    env: Mapping[str, str] | None,
    clients: ContainerClients,
    log: _Log,
) -> None:
    where = f"outputFiles[{index}]"
    pattern = str(spec.get("filePattern") or "")
    container = (spec.get("destination") or {}).get("container") or {}
    url = str(container.get("containerUrl") or "")
    record: dict[str, object] = {
        "outputFile": where,
        "pattern": pattern,
        "destination": public_url(url),
    }

    def fail(code: str, reason: str, category: str | None = None, file: str = "") -> NoReturn:
        default_category, text = _FAILURES[code]
        message = f"{text}: {where} '{pattern}'"
        if file:
            message += f" file '{file}'"
        message += f" to '{public_url(url)}': {reason}"
        category = category or default_category
        log.error({**record, "file": file, "code": code, "category": category, "message": message})
        raise FileUploadError(
            code,
            message,
            category=category,
            details=[("OutputFile", where), ("FilePattern", pattern)],
        )

    condition = str((spec.get("uploadOptions") or {}).get("uploadCondition") or "")
    try:
        wanted = should_upload(condition, exit_code)
    except ValueError as exc:
        fail("FileUploadMiscError", str(exc), "usererror")
    if not pattern or not url:
        fail("FileUploadMiscError", "filePattern and containerUrl are required", "usererror")
    if not wanted:
        log.info(
            f"{where} '{pattern}': skipped, uploadCondition {condition} and exit code {exit_code}"
        )
        return
    try:
        matches = match_files(pattern, working_dir, env)
    except ValueError as exc:
        fail("FileUploadMiscError", str(exc), "usererror")
    if not matches:
        log.info(f"{where} '{pattern}': no files match")
        return
    try:
        options = _upload_options(container.get("uploadHeaders") or [])
    except ValueError as exc:
        fail("FileUploadMiscError", str(exc), "usererror")
    try:
        client = clients.by_url(url)
    except ValueError as exc:
        fail("FileUploadMiscError", f"not a container URL: {exc}", "usererror")
    path = container.get("path")
    for file, name in matches:
        blob = blob_name(pattern, str(path) if path else None, name)
        shown = log.shown(file)
        try:
            size = _upload_file(client, blob, file, options)
        except OSError as exc:  # the local file went away or cannot be read
            fail("FileUploadMiscError", f"cannot read it: {exc.strerror or exc}", file=shown)
        except Exception as exc:  # azure-core raises many types; map them to Batch codes
            code, reason = _classify(exc)
            fail(code, reason, file=shown)
        log.info(f"uploaded '{shown}' ({size} bytes) to '{public_url(url)}/{blob}'")


def _upload_file(client: ContainerClient, blob: str, file: Path, options: Mapping[str, Any]) -> int:
    size = os.path.getsize(file)
    with open(file, "rb") as data:
        client.upload_blob(blob, data, length=size, overwrite=True, **options)
    return size


def _classify(exc: Exception) -> tuple[str, str]:
    """Batch's code and a short, secret-free reason for an azure-core upload error."""
    status = status_of(exc)
    service_code = storage_code(exc)
    reason = f"HTTP {status}" if status else type(exc).__name__
    if service_code:
        reason += f" {service_code}"
    if status is None:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        if first_line:
            reason += f": {redact(first_line)[:300]}"
    if status == 404 or service_code in ("ContainerNotFound", "ResourceNotFound"):
        return "FileUploadContainerNotFound", reason
    if status in (401, 403) or type(exc).__name__ == "ClientAuthenticationError":
        return "FileUploadAuthenticationFailed", reason
    if is_timeout(exc):
        return "FileUploadMiscError", f"timed out ({reason})"
    return "FileUploadMiscError", reason


def _upload_options(headers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`upload_blob` keyword arguments for Batch `uploadHeaders` (`[{name, value}]`)."""
    settings: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    extra: dict[str, str] = {}
    options: dict[str, Any] = {}
    pairs = [(str(h.get("name", "")), str(h.get("value") or "")) for h in headers]
    for name, value in pairs:
        lower = name.lower()
        if lower in _PLAIN_PROPERTIES:
            settings.setdefault(_PLAIN_PROPERTIES[lower], value)
    for name, value in pairs:
        lower = name.lower()
        if lower in _BLOB_PROPERTIES:
            field = _BLOB_PROPERTIES[lower]
            if field == "content_md5":
                try:
                    settings[field] = bytearray(base64.b64decode(value, validate=True))
                except ValueError:
                    raise ValueError(f"uploadHeaders {name}: '{value}' is not base64") from None
            else:
                settings[field] = value
        elif lower.startswith("x-ms-meta-"):
            metadata[name[len("x-ms-meta-") :]] = value
        elif lower == "x-ms-access-tier":
            options["standard_blob_tier"] = _tier(value)
        elif lower == "x-ms-tags":
            options["tags"] = dict(parse_qsl(value, keep_blank_values=True))
        elif lower not in _PLAIN_PROPERTIES:
            if not name:
                raise ValueError("uploadHeaders has an entry without a name")
            extra[name] = value
    if settings:
        from azure.storage.blob import ContentSettings

        options["content_settings"] = ContentSettings(**settings)
    if metadata:
        options["metadata"] = metadata
    if extra:
        options["headers"] = extra
    return options


def _tier(value: str) -> Any:
    """The `StandardBlobTier` named by `value` (any case)."""
    from azure.storage.blob import StandardBlobTier

    tiers = {tier.value.lower(): tier for tier in StandardBlobTier}
    if value.lower() not in tiers:
        names = ", ".join(tier.value for tier in StandardBlobTier)
        raise ValueError(f"uploadHeaders x-ms-access-tier: '{value}' is not one of {names}")
    return tiers[value.lower()]
