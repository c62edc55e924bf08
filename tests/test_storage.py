"""Resource files from http(s) URLs against a real HTTP server: fileMode, paths that would
escape, each Batch failure code, local write failures, AutoStorage settings and lazy
imports; secrets never leak into errors. Containers: test_storage_containers.py."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from batchflow.exceptions import PreprocessingError, StagingError
from batchflow.storage import AutoStorage, TransferPolicy, fetch_resource_files
from batchflow.storage.resources import safe_relative
from tests.servers import Azurite, HttpServer, free_port

FAST = TransferPolicy(timeout=5.0, retries=0, backoff=0.0)


def fetch(specs: list[dict[str, Any]], wd: Path, **kwargs: Any) -> None:
    kwargs.setdefault("policy", FAST)
    fetch_resource_files(specs, wd, **kwargs)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def fails(specs: list[dict[str, Any]], wd: Path, **kwargs: Any) -> PreprocessingError:
    with pytest.raises(PreprocessingError) as caught:
        fetch(specs, wd, **kwargs)
    return caught.value


def assert_no_secret(error: StagingError, secret: str) -> None:
    shown = [str(error), error.message, repr(error.args), repr(error.details)]
    assert not any(secret in text for text in shown), shown


@pytest.fixture
def wd(tmp_path: Path) -> Path:
    path = tmp_path / "task" / "wd"
    path.mkdir(parents=True)
    return path


# --- httpUrl ---------------------------------------------------------------------------


def test_http_url_is_downloaded_to_file_path_with_mode_0770(
    http_server: HttpServer, wd: Path
) -> None:
    url = http_server.serve("in.csv", b"a,b\n1,2\n")
    fetch([{"httpUrl": url, "filePath": "data/in.csv"}], wd)
    assert (wd / "data" / "in.csv").read_bytes() == b"a,b\n1,2\n"
    assert mode_of(wd / "data" / "in.csv") == 0o770


@pytest.mark.parametrize(("file_mode", "expected"), [("0644", 0o644), ("755", 0o755)])
def test_file_mode_is_applied(
    http_server: HttpServer, wd: Path, file_mode: str, expected: int
) -> None:
    url = http_server.serve("run.sh", b"#!/bin/sh\n")
    fetch([{"httpUrl": url, "filePath": "run.sh", "fileMode": file_mode}], wd)
    assert mode_of(wd / "run.sh") == expected


def test_redirects_are_followed(http_server: HttpServer, wd: Path) -> None:
    http_server.serve("moved.txt", b"here")
    fetch([{"httpUrl": http_server.url("/redirect/moved.txt"), "filePath": "m.txt"}], wd)
    assert (wd / "m.txt").read_bytes() == b"here"


def test_a_sas_url_is_sent_with_its_query_string(http_server: HttpServer, wd: Path) -> None:
    http_server.serve("secret.bin", b"s")
    url = http_server.url("/sas/secret.bin?sv=2024-01-01&sp=r&sig=good")
    fetch([{"httpUrl": url, "filePath": "secret.bin"}], wd)
    assert (wd / "secret.bin").read_bytes() == b"s"
    assert "/sas/secret.bin?sv=2024-01-01&sp=r&sig=good" in http_server.requests


@pytest.mark.parametrize(
    ("path", "code", "category"),
    [
        ("/files/missing.txt", "BlobNotFound", "usererror"),  # 404
        ("/status/403", "BlobAccessDenied", "usererror"),
        ("/status/401", "BlobAccessDenied", "usererror"),
        ("/status/500", "BlobDownloadMiscError", "servererror"),
        ("/status/400", "BlobDownloadMiscError", "servererror"),
        ("/truncated/x", "BlobDownloadMiscError", "servererror"),  # connection cut short
    ],
)
def test_http_failures_map_to_batch_codes(
    http_server: HttpServer, wd: Path, path: str, code: str, category: str
) -> None:
    http_server.serve("x", b"x")
    error = fails([{"httpUrl": http_server.url(path), "filePath": "out/f.txt"}], wd)
    assert (error.code, error.category) == (code, category)
    assert "resourceFiles[0]" in error.message
    assert not (wd / "out" / "f.txt").exists()  # no partial file is left behind


def test_an_unreachable_server_is_a_misc_download_error(wd: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    error = fails([{"httpUrl": url, "filePath": "x"}], wd)
    assert error.code == "BlobDownloadMiscError"


def test_a_slow_server_times_out(http_server: HttpServer, wd: Path) -> None:
    http_server.serve("slow.txt", b"late")
    url = http_server.url("/slow/3/slow.txt")
    policy = TransferPolicy(timeout=0.2, retries=0, backoff=0)
    error = fails([{"httpUrl": url, "filePath": "slow.txt"}], wd, policy=policy)
    assert (error.code, error.category) == ("BlobDownloadTimedOut", "servererror")


def test_transient_failures_are_retried(http_server: HttpServer, wd: Path) -> None:
    name = f"flaky-{uuid.uuid4().hex}"
    http_server.serve(name, b"finally")
    url = http_server.url(f"/flaky/2/{name}")
    fetch([{"httpUrl": url, "filePath": "f"}], wd, policy=TransferPolicy(retries=2, backoff=0))
    assert (wd / "f").read_bytes() == b"finally"
    assert http_server.flaky_failures[name] == 3


def test_retries_run_out(http_server: HttpServer, wd: Path) -> None:
    name = f"flaky-{uuid.uuid4().hex}"
    http_server.serve(name, b"never")
    url = http_server.url(f"/flaky/5/{name}")
    policy = TransferPolicy(retries=1, backoff=0)
    error = fails([{"httpUrl": url, "filePath": "f"}], wd, policy=policy)
    assert error.code == "BlobDownloadMiscError"
    assert http_server.flaky_failures[name] == 2


def test_the_sas_signature_never_appears_in_the_error(http_server: HttpServer, wd: Path) -> None:
    secret = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
    url = http_server.url(f"/sas/x?sv=2024-01-01&sig={secret}")
    error = fails([{"httpUrl": url, "filePath": "x"}], wd)
    assert error.code == "BlobAccessDenied"
    assert "sig=***" in error.message
    assert_no_secret(error, secret)


def test_a_later_failure_names_its_entry(http_server: HttpServer, wd: Path) -> None:
    good = http_server.serve("good.txt", b"g")
    error = fails(
        [
            {"httpUrl": good, "filePath": "g"},
            {"httpUrl": http_server.url("/status/404"), "filePath": "b"},
        ],
        wd,
    )
    assert "resourceFiles[1]" in error.message
    assert ("ResourceFile", "resourceFiles[1]") in error.details
    assert (wd / "g").exists()


# --- paths that would leave the working directory --------------------------------------


@pytest.mark.parametrize("file_path", ["../escape.txt", "a/../../escape.txt", "/tmp/escape.txt"])
def test_file_path_may_not_escape_the_working_dir(
    http_server: HttpServer, wd: Path, file_path: str
) -> None:
    url = http_server.serve("e", b"e")
    error = fails([{"httpUrl": url, "filePath": file_path}], wd)
    assert (error.code, error.category) == ("ResourceFileCreateFailed", "usererror")
    assert not (wd.parent / "escape.txt").exists()


def test_a_symlink_may_not_lead_a_file_path_outside(
    http_server: HttpServer, wd: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (wd / "link").symlink_to(outside, target_is_directory=True)
    url = http_server.serve("e", b"e")
    error = fails([{"httpUrl": url, "filePath": "link/e.txt"}], wd)
    assert error.code == "ResourceFileCreateFailed"
    assert list(outside.iterdir()) == []


def test_inner_dot_dot_that_stays_inside_is_fine(http_server: HttpServer, wd: Path) -> None:
    url = http_server.serve("in", b"in")
    fetch([{"httpUrl": url, "filePath": "a/../b/in.txt"}], wd)
    assert (wd / "b" / "in.txt").read_bytes() == b"in"


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/b.txt", ["a", "b.txt"]),
        ("/abs.txt", ["abs.txt"]),  # a leading slash is an empty segment, not the root
        ("a//b/./c", ["a", "b", "c"]),
        ("a\\b", ["a", "b"]),
        ("a/../b", ["b"]),  # climbs back, but stays inside
    ],
)
def test_safe_relative_keeps_names_below_the_directory(name: str, parts: list[str]) -> None:
    assert safe_relative(name, "blob") == parts


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../x", "..", "a/b/../../.."])
def test_safe_relative_refuses_dot_dot(name: str) -> None:
    with pytest.raises(Exception, match="outside the task's working directory"):
        safe_relative(name, "blob")


def test_http_url_needs_a_file_path(http_server: HttpServer, wd: Path) -> None:
    error = fails([{"httpUrl": http_server.serve("n", b"n")}], wd)
    assert (error.code, error.category) == ("ResourceFileCreateFailed", "usererror")
    assert "filePath is required" in error.message


def test_an_entry_without_a_source_is_refused(wd: Path) -> None:
    error = fails([{"filePath": "x"}], wd)
    assert error.category == "usererror"


def test_a_bad_file_mode_is_refused(http_server: HttpServer, wd: Path) -> None:
    error = fails(
        [{"httpUrl": http_server.serve("m", b"m"), "filePath": "m", "fileMode": "rwx"}], wd
    )
    assert error.category == "usererror"
    assert "fileMode 'rwx'" in error.message


# --- local write failures --------------------------------------------------------------


def test_a_file_where_a_directory_must_go_fails_directory_creation(
    http_server: HttpServer, wd: Path
) -> None:
    (wd / "data").write_text("a file, not a directory")
    error = fails([{"httpUrl": http_server.serve("d", b"d"), "filePath": "data/in.txt"}], wd)
    assert (error.code, error.category) == ("ResourceDirectoryCreateFailed", "servererror")


def test_a_directory_where_the_file_must_go_fails_file_creation(
    http_server: HttpServer, wd: Path
) -> None:
    (wd / "in.txt").mkdir()
    error = fails([{"httpUrl": http_server.serve("d", b"d"), "filePath": "in.txt"}], wd)
    assert (error.code, error.category) == ("ResourceFileCreateFailed", "servererror")


def test_a_write_that_fails_midway_is_a_write_failure(http_server: HttpServer, wd: Path) -> None:
    # A real failing write: the process may not write files over 1 KiB (RLIMIT_FSIZE).
    url = http_server.serve("big.bin", b"x" * 100_000)
    script = f"""
import resource, signal, sys
from pathlib import Path
from batchflow.storage import TransferPolicy, fetch_resource_files
from batchflow.exceptions import PreprocessingError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
try:
    fetch_resource_files([{{"httpUrl": {url!r}, "filePath": "big.bin"}}], Path({str(wd)!r}),
                         policy=TransferPolicy(retries=0))
except PreprocessingError as e:
    print(e.code, e.category)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["ResourceFileWriteFailed", "servererror"]
    assert not (wd / "big.bin").exists()


# --- AutoStorage and laziness ----------------------------------------------------------


def test_auto_storage_from_env_prefers_batchflow_setting() -> None:
    env = {
        "BATCHFLOW_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=k1",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountName=b;AccountKey=k2",
    }
    assert AutoStorage.from_env(env) == AutoStorage(
        connection_string=env["BATCHFLOW_STORAGE_CONNECTION_STRING"]
    )
    only_azure = {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=b;AccountKey=k2"}
    assert AutoStorage.from_env(only_azure) == AutoStorage(
        connection_string="AccountName=b;AccountKey=k2"
    )
    assert AutoStorage.from_env({}) is None
    assert AutoStorage.from_env({"BATCHFLOW_STORAGE_CONNECTION_STRING": " "}) is None


def test_auto_storage_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    auto = AutoStorage.from_env()
    assert auto is not None
    assert auto.blob_endpoint() == "http://127.0.0.1:10000/devstoreaccount1"


def test_auto_storage_keeps_secrets_out_of_its_repr(azurite: Azurite) -> None:
    auto = AutoStorage(connection_string=azurite.connection_string, credential="key")
    assert azurite.account_key not in repr(auto)
    assert "key" not in repr(auto).replace("AutoStorage", "")


@pytest.mark.parametrize(
    ("connection_string", "endpoint"),
    [
        ("AccountName=acct;AccountKey=k", "https://acct.blob.core.windows.net"),
        (
            "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;EndpointSuffix=example.net",
            "http://a.blob.example.net",
        ),
        ("AccountName=a;AccountKey=k;BlobEndpoint=http://127.0.0.1:9/a/", "http://127.0.0.1:9/a"),
    ],
)
def test_auto_storage_blob_endpoint(connection_string: str, endpoint: str) -> None:
    auto = AutoStorage(connection_string=connection_string)
    assert auto.blob_endpoint() == endpoint
    assert auto.owns(f"{endpoint}/container")
    assert not auto.owns("https://other.blob.core.windows.net/container")


def test_no_resource_files_touches_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "not-created"
    fetch_resource_files([], missing)
    assert not missing.exists()


def test_azure_sdk_is_imported_only_for_containers(http_server: HttpServer, tmp_path: Path) -> None:
    url = http_server.serve("lazy.txt", b"lazy")
    script = f"""
import sys
from pathlib import Path
import batchflow.storage
print(sorted(m for m in ("azure", "urllib.request") if m in sys.modules))
spec = {{"httpUrl": {url!r}, "filePath": "l"}}
batchflow.storage.fetch_resource_files([spec], Path({str(tmp_path)!r}))
print("azure" in sys.modules)
"""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.split("\n")[:2] == ["[]", "False"]
    assert (tmp_path / "l").read_bytes() == b"lazy"


def test_a_password_in_a_url_is_not_shown(http_server: HttpServer, wd: Path) -> None:
    url = http_server.url("/status/404").replace("http://", "http://user:hunter2@")
    error = fails([{"httpUrl": url, "filePath": "x"}], wd)
    assert error.code in ("BlobNotFound", "BlobDownloadMiscError")
    assert_no_secret(error, "hunter2")


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (errno.ENOSPC, "DiskFull"),
        (errno.EDQUOT, "DiskFull"),
        (errno.EIO, "ResourceFileWriteFailed"),  # the code asked for stays
    ],
)
def test_a_full_disk_is_reported_as_disk_full(number: int, code: str) -> None:
    from batchflow.storage.resources import _local_failure

    failure = _local_failure("ResourceFileWriteFailed", OSError(number, "x"), Path("f"))
    assert failure.code == code
