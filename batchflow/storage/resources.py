"""Resource files: what Batch downloads into a task's working directory before it runs.

Three forms, exactly one per entry (wire dicts, camelCase keys):

- `httpUrl` + `filePath`: one GET of any http(s) URL (a blob SAS URL, a web server, ...),
  written to `filePath` (required) under the working directory.
- `storageContainerUrl` [+ `blobPrefix`] [+ `filePath`]: every blob of the container whose
  name starts with the prefix, each at its full blob name under `filePath` (default: the
  working directory itself).
- `autoStorageContainerName` [+ `blobPrefix`] [+ `filePath`]: the same for a container of
  the auto-storage account (`AutoStorage`).

Every file gets `fileMode` (octal, default `0770` as on Batch's Linux nodes). Nothing may
land outside the working directory: `filePath` and blob names are checked, and a blob
name's empty segments (`/a.txt`, `a//b`) are dropped. A failure raises `PreprocessingError`
with Batch's `failureInfo` code: `BlobNotFound` (HTTP 404), `BlobAccessDenied` (401/403),
`BlobDownloadTimedOut`, `BlobDownloadMiscError` (anything else on the wire),
`ResourceDirectoryCreateFailed`, `ResourceFileCreateFailed`, `ResourceFileWriteFailed`,
`DiskFull` (the local side).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchflow.exceptions import PreprocessingError
from batchflow.storage.blobs import (
    AutoStorage,
    ContainerClients,
    TransferPolicy,
    is_timeout,
    shown_url,
    status_of,
)

if TYPE_CHECKING:
    from urllib.request import OpenerDirector

    from azure.storage.blob import ContainerClient

__all__ = ["DEFAULT_FILE_MODE", "fetch_resource_files"]

#: Batch's fileMode when a resource file gives none (Linux nodes).
DEFAULT_FILE_MODE = 0o770
_CHUNK = 1 << 20
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# Batch's category and user message for each code (REST "Batch Status and Error Codes").
_FAILURES: dict[str, tuple[str, str]] = {
    "BlobNotFound": ("usererror", "One of the specified Azure Blob(s) is not found"),
    "BlobAccessDenied": ("usererror", "Access for one of the specified Azure Blob(s) is denied"),
    "BlobDownloadTimedOut": (
        "servererror",
        "Timeout encountered while downloading one of the specified Azure Blob(s)",
    ),
    "BlobDownloadMiscError": (
        "servererror",
        "Miscellaneous error encountered while downloading one of the specified Azure Blob(s)",
    ),
    "ResourceDirectoryCreateFailed": (
        "servererror",
        "Failure encountered creating resource directory for the task",
    ),
    "ResourceFileCreateFailed": ("servererror", "Failure encountered creating resource file"),
    "ResourceFileWriteFailed": ("servererror", "Failure encountered writing resource file"),
    "DiskFull": ("servererror", "There is not enough disk space on the node"),
    "AutoStorageNotConfigured": (
        "usererror",
        "The account has no auto-storage account for autoStorageContainerName",
    ),
}


class _Failure(Exception):
    """A failure found deep in a transfer, turned into a PreprocessingError by the caller."""

    def __init__(self, code: str, reason: str, category: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.category = category


def fetch_resource_files(
    resource_files: Sequence[Mapping[str, Any]],
    working_dir: Path,
    *,
    auto_storage: AutoStorage | None = None,
    policy: TransferPolicy | None = None,
) -> None:
    """Download Batch `resourceFiles` (wire dicts, camelCase keys) into `working_dir`.

    Raises `PreprocessingError` (with Batch's `code` and `category`) at the first file that
    cannot be fetched; its message names the entry (`resourceFiles[2]`) and its redacted URL.
    """
    if not resource_files:
        return
    policy = policy or TransferPolicy()
    root = Path(os.path.realpath(working_dir))
    clients = ContainerClients(policy, auto_storage)
    opener: OpenerDirector | None = None
    try:
        for index, spec in enumerate(resource_files):
            where = f"resourceFiles[{index}]"
            source = _describe(spec)
            try:
                mode = _file_mode(spec.get("fileMode"))
                if spec.get("httpUrl"):
                    if not spec.get("filePath"):
                        raise _Failure(
                            "ResourceFileCreateFailed",
                            "filePath is required with httpUrl (the file's path in the task)",
                            "usererror",
                        )
                    target = _target(root, spec.get("filePath"), None)
                    url = str(spec["httpUrl"])
                    blob = _auto_storage_blob(url, auto_storage)
                    if blob is not None and auto_storage is not None:
                        # A blob of the auto-storage account with no SAS: read with that
                        # account's credential, as a node's managed identity would.
                        container, name = blob
                        client = clients.by_name(container, auto_storage)
                        _write_file(target, mode, _blob_fill(client, name), lambda: False)
                    else:
                        opener = opener or _opener()
                        _download_http(opener, url, target, mode, policy)
                elif spec.get("storageContainerUrl"):
                    try:
                        client = clients.by_url(str(spec["storageContainerUrl"]))
                    except ValueError as exc:
                        raise _Failure("BlobDownloadMiscError", str(exc), "usererror") from None
                    _download_container(client, spec, root, mode)
                elif spec.get("autoStorageContainerName"):
                    if auto_storage is None:
                        raise _Failure(
                            "AutoStorageNotConfigured",
                            "no storage account is configured for the local engine; set "
                            "BATCHFLOW_STORAGE_CONNECTION_STRING (e.g. an Azurite connection "
                            "string) or use storageContainerUrl",
                        )
                    try:
                        client = clients.by_name(
                            str(spec["autoStorageContainerName"]), auto_storage
                        )
                    except ValueError as exc:
                        raise _Failure("BlobDownloadMiscError", str(exc), "usererror") from None
                    _download_container(client, spec, root, mode)
                else:
                    raise _Failure(
                        "ResourceFileCreateFailed",
                        "give exactly one of httpUrl, storageContainerUrl, "
                        "autoStorageContainerName",
                        "usererror",
                    )
            except _Failure as failure:
                category, text = _FAILURES.get(failure.code, ("servererror", failure.code))
                raise PreprocessingError(
                    failure.code,
                    f"{text}: {where} {source}: {failure.reason}",
                    category=failure.category or category,
                    details=[("ResourceFile", where), ("Source", source)],
                ) from None
    finally:
        clients.close()


def _describe(spec: Mapping[str, Any]) -> str:
    for key in ("httpUrl", "storageContainerUrl", "autoStorageContainerName"):
        if spec.get(key):
            return f"{key} '{shown_url(str(spec[key]))}'"
    return "(no source)"


def _file_mode(value: object) -> int:
    if value is None or value == "":
        return DEFAULT_FILE_MODE
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise _Failure(
            "ResourceFileCreateFailed", f"fileMode '{value}' is not octal", "usererror"
        ) from None
    if not 0 <= mode <= 0o7777:
        raise _Failure(
            "ResourceFileCreateFailed", f"fileMode '{value}' is out of range", "usererror"
        )
    return mode


def safe_relative(path: str, what: str) -> list[str]:
    """The segments of a relative `path` that must stay below a directory.

    Empty and `.` segments are dropped (`/a.txt` is `a.txt`: a blob name's leading slash is
    not the root), `a/../b` is `b`, and a `..` that climbs above the start is refused, for
    `filePath` as Batch refuses it and for blob names alike.
    """
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts:
            parts.pop()
        else:
            raise _Failure(
                "ResourceFileCreateFailed",
                f"{what} '{path}' would be written outside the task's working directory",
                "usererror",
            )
    return parts


def _target(root: Path, file_path: object, blob_name: str | None) -> Path:
    """The local file for a resource file, checked to stay inside `root` (symlinks too)."""
    parts: list[str] = []
    if file_path:
        text = str(file_path)
        if text.startswith(("/", "\\")) or posixpath.isabs(text):
            raise _Failure(
                "ResourceFileCreateFailed",
                f"filePath '{text}' is absolute; it must be relative to the working directory",
                "usererror",
            )
        parts += safe_relative(text, "filePath")
    if blob_name is not None:
        parts += safe_relative(blob_name, "blob")
    if not parts:
        raise _Failure(
            "ResourceFileCreateFailed", "filePath names the working directory itself", "usererror"
        )
    target = root.joinpath(*parts)
    real = os.path.realpath(target)
    if real != str(root) and not real.startswith(str(root) + os.sep):
        raise _Failure(
            "ResourceFileCreateFailed",
            f"'{'/'.join(parts)}' leads outside the task's working directory",
            "usererror",
        )
    return target


def _local_failure(code: str, exc: OSError, target: Path) -> _Failure:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        code = "DiskFull"
    return _Failure(code, f"{target.name}: {exc.strerror or exc}")


def _write_file(
    target: Path, mode: int, fill: Callable[[IO[bytes]], None], retry: Callable[[], bool]
) -> None:
    """Create `target` (and its directories), let `fill` write it, then set `mode`.

    `fill` raises `_Failure` for transfer problems and lets local `OSError`s through, which
    become `ResourceFileWriteFailed` (or `DiskFull`). When `retry()` says so after a
    transient failure, the file is truncated and filled again.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _local_failure("ResourceDirectoryCreateFailed", exc, target.parent) from None
    try:
        handle = open(target, "wb")  # noqa: SIM115 - closed below, errors mapped separately
    except OSError as exc:
        raise _local_failure("ResourceFileCreateFailed", exc, target) from None
    try:
        with handle:
            while True:
                try:
                    fill(handle)
                    break
                except _Retry:
                    if not retry():
                        raise
                    handle.seek(0)
                    handle.truncate()
    except _Retry as last:
        _remove(target)
        raise last.failure from None
    except _Failure:
        _remove(target)
        raise
    except OSError as exc:
        _remove(target)
        raise _local_failure("ResourceFileWriteFailed", exc, target) from None
    try:
        os.chmod(target, mode)
    except OSError as exc:
        raise _local_failure("ResourceFileCreateFailed", exc, target) from None


class _Retry(Exception):
    """A transient transfer failure: worth another attempt if the policy allows one."""

    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _opener() -> OpenerDirector:
    from urllib.request import build_opener

    return build_opener()


def _download_http(
    opener: OpenerDirector, url: str, target: Path, mode: int, policy: TransferPolicy
) -> None:
    from http.client import HTTPException
    from urllib.error import HTTPError, URLError
    from urllib.request import Request

    from batchflow import __version__

    attempts = [0]

    def retry() -> bool:
        attempts[0] += 1
        if attempts[0] > policy.retries:
            return False
        time.sleep(policy.backoff * 2 ** (attempts[0] - 1))
        return True

    def fill(handle: IO[bytes]) -> None:
        request = Request(url, headers={"User-Agent": f"batchflow/{__version__}"})
        try:
            response = opener.open(request, timeout=policy.timeout)
        except HTTPError as exc:
            status = exc.code
            exc.close()
            reason = f"HTTP {status} {exc.reason}"
            if status == 404:
                raise _Failure("BlobNotFound", reason) from None
            if status in (401, 403):
                raise _Failure("BlobAccessDenied", reason) from None
            failure = _Failure("BlobDownloadMiscError", reason)
            raise (_Retry(failure) if status in _RETRY_STATUSES else failure) from None
        except URLError as exc:
            raise _network_failure(exc.reason, policy) from None
        except (OSError, HTTPException) as exc:
            raise _network_failure(exc, policy) from None
        except ValueError as exc:  # not a URL urllib can open ("unknown url type")
            raise _Failure("BlobDownloadMiscError", str(exc)) from None
        with response:
            expected = response.headers.get("Content-Length")
            received = 0
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, HTTPException) as exc:
                    raise _network_failure(exc, policy) from None
                if not chunk:
                    break
                received += len(chunk)
                handle.write(chunk)  # a local OSError here is a write failure
        if expected and expected.isdigit() and int(expected) != received:
            failure = _Failure(
                "BlobDownloadMiscError",
                f"the connection closed after {received} of {expected} bytes",
            )
            raise _Retry(failure)

    _write_file(target, mode, fill, retry)


def _download_container(
    client: ContainerClient, spec: Mapping[str, Any], root: Path, mode: int
) -> None:
    prefix = spec.get("blobPrefix") or None
    try:
        names = [
            blob.name
            for blob in client.list_blobs(name_starts_with=prefix)
            if not blob.name.endswith("/")  # a virtual directory marker, not a file
        ]
    except Exception as exc:  # azure-core raises many types; map them all to Batch codes
        raise _azure_failure(exc, "listing the container") from None
    targets = [(name, _target(root, spec.get("filePath"), name)) for name in names]
    for name, target in targets:
        _write_file(target, mode, _blob_fill(client, name), lambda: False)  # SDK retried


def _blob_fill(client: ContainerClient, name: str) -> Callable[[IO[bytes]], None]:
    """What writes blob `name` of `client`'s container into an open file."""

    def fill(handle: IO[bytes]) -> None:
        try:
            chunks = iter(client.download_blob(name).chunks())
        except Exception as exc:
            raise _azure_failure(exc, f"blob '{name}'") from None
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as exc:
                raise _azure_failure(exc, f"blob '{name}'") from None
            handle.write(chunk)  # a local OSError here is a write failure

    return fill


def _auto_storage_blob(url: str, auto_storage: AutoStorage | None) -> tuple[str, str] | None:
    """(container, blob name) when `url` is a blob of the auto-storage account with no
    SAS in it; else None (the URL is fetched over plain HTTP)."""
    if auto_storage is None or "?" in url or not auto_storage.owns(url):
        return None
    from urllib.parse import unquote

    rest = url[len(auto_storage.blob_endpoint()) :].lstrip("/")
    container, _, name = rest.partition("/")
    return (container, unquote(name)) if container and name else None


def _network_failure(cause: object, policy: TransferPolicy) -> _Retry:
    """A failure of the connection itself (timeout, refused, reset): worth a retry."""
    if isinstance(cause, BaseException) and is_timeout(cause):
        return _Retry(_Failure("BlobDownloadTimedOut", f"no answer within {policy.timeout:g}s"))
    return _Retry(_Failure("BlobDownloadMiscError", str(cause) or type(cause).__name__))


def _azure_failure(exc: Exception, what: str) -> _Failure:
    status = status_of(exc)
    detail = f"{what}: HTTP {status}" if status else f"{what}: {type(exc).__name__}"
    if status == 404:
        return _Failure("BlobNotFound", detail)
    if status in (401, 403) or type(exc).__name__ == "ClientAuthenticationError":
        return _Failure("BlobAccessDenied", detail)
    if is_timeout(exc):
        return _Failure("BlobDownloadTimedOut", detail)
    return _Failure("BlobDownloadMiscError", detail)
