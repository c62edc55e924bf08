"""Resource files against a real HTTP server and a real Azurite: every form, fileMode,
escapes, and each Batch failure code; secrets never leak into errors."""

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


# --- storageContainerUrl and autoStorageContainerName (real Azurite) -------------------


@pytest.fixture
def container(azurite: Azurite) -> str:
    """A container with a few blobs; returns its name."""
    client = azurite.new_container()
    for name, data in {
        "a.txt": b"A",
        "d/b.txt": b"B",
        "d/e/f.txt": b"F",
        "data/x.csv": b"X",
        "dir/": b"",  # a virtual directory marker, not a file
    }.items():
        client.upload_blob(name, data)
    return client.container_name


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_container_url_downloads_every_blob_at_its_full_name(
    azurite: Azurite, container: str, wd: Path
) -> None:
    fetch([{"storageContainerUrl": azurite.sas_url(container, "rl")}], wd)
    assert files_under(wd) == {
        "a.txt": b"A",
        "d/b.txt": b"B",
        "d/e/f.txt": b"F",
        "data/x.csv": b"X",
    }
    assert {mode_of(p) for p in wd.rglob("*") if p.is_file()} == {0o770}


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("d/", ["d/b.txt", "d/e/f.txt"]),  # a virtual directory
        ("d/e", ["d/e/f.txt"]),
        ("d", ["d/b.txt", "d/e/f.txt", "data/x.csv"]),  # a partial name, as Batch documents
        ("a.", ["a.txt"]),
        ("nothing-here", []),  # no blob matches: nothing to fetch, not an error
    ],
)
def test_blob_prefix_selects_blobs_and_keeps_their_full_path(
    azurite: Azurite, container: str, wd: Path, prefix: str, expected: list[str]
) -> None:
    spec = {"storageContainerUrl": azurite.sas_url(container, "rl"), "blobPrefix": prefix}
    fetch([spec], wd)
    assert sorted(files_under(wd)) == expected


def test_file_path_is_the_target_directory_for_a_container(
    azurite: Azurite, container: str, wd: Path
) -> None:
    spec = {
        "storageContainerUrl": azurite.sas_url(container, "rl"),
        "blobPrefix": "d/",
        "filePath": "inputs",
        "fileMode": "0600",
    }
    fetch([spec], wd)
    assert files_under(wd) == {"inputs/d/b.txt": b"B", "inputs/d/e/f.txt": b"F"}
    assert mode_of(wd / "inputs" / "d" / "e" / "f.txt") == 0o600


def test_a_blob_with_a_leading_slash_stays_inside(azurite: Azurite, wd: Path) -> None:
    client = azurite.new_container()
    name = f"bf-{uuid.uuid4().hex}.txt"
    client.upload_blob(f"/{name}", b"rooted")
    fetch([{"storageContainerUrl": azurite.sas_url(client.container_name, "rl")}], wd)
    assert (wd / name).read_bytes() == b"rooted"
    assert not Path(f"/{name}").exists()


def test_a_missing_container_is_blob_not_found(azurite: Azurite, wd: Path) -> None:
    missing = azurite.new_container(create=False).container_name
    error = fails([{"storageContainerUrl": azurite.sas_url(missing, "rl")}], wd)
    assert (error.code, error.category) == ("BlobNotFound", "usererror")


@pytest.mark.parametrize("permission", ["r", "w"])  # no list (or no read) permission
def test_a_sas_without_the_needed_permission_is_access_denied(
    azurite: Azurite, container: str, wd: Path, permission: str
) -> None:
    error = fails([{"storageContainerUrl": azurite.sas_url(container, permission)}], wd)
    assert (error.code, error.category) == ("BlobAccessDenied", "usererror")


def test_a_forged_sas_is_access_denied_and_not_shown(
    azurite: Azurite, container: str, wd: Path
) -> None:
    url = azurite.sas_url(container, "rl")
    forged = url.replace("sig=", "sig=Zm9yZ2Vk")
    error = fails([{"storageContainerUrl": forged}], wd)
    assert error.code == "BlobAccessDenied"
    assert_no_secret(error, forged.split("sig=")[1].split("&")[0])


def test_a_container_url_without_sas_is_anonymous(
    azurite: Azurite, container: str, wd: Path
) -> None:
    error = fails([{"storageContainerUrl": f"{azurite.account_url}/{container}"}], wd)
    assert error.code == "BlobAccessDenied"


def test_a_url_of_the_auto_storage_account_borrows_its_credential(
    azurite: Azurite, container: str, wd: Path
) -> None:
    # As a node's managed identity (identityReference) would, without a SAS in the URL.
    auto = AutoStorage(connection_string=azurite.connection_string)
    spec = {"storageContainerUrl": f"{azurite.account_url}/{container}", "blobPrefix": "a"}
    fetch([spec], wd, auto_storage=auto)
    assert files_under(wd) == {"a.txt": b"A"}


def test_auto_storage_container_name(azurite: Azurite, container: str, wd: Path) -> None:
    auto = AutoStorage(connection_string=azurite.connection_string)
    spec = {"autoStorageContainerName": container, "blobPrefix": "data/", "filePath": "in"}
    fetch([spec], wd, auto_storage=auto)
    assert files_under(wd) == {"in/data/x.csv": b"X"}


def test_auto_storage_by_account_url_and_key(azurite: Azurite, container: str, wd: Path) -> None:
    auto = AutoStorage(
        account_url=azurite.account_url,
        credential={"account_name": azurite.account_name, "account_key": azurite.account_key},
    )
    fetch([{"autoStorageContainerName": container, "blobPrefix": "a"}], wd, auto_storage=auto)
    assert files_under(wd) == {"a.txt": b"A"}


def test_auto_storage_container_name_without_an_account_is_a_clear_error(wd: Path) -> None:
    error = fails([{"autoStorageContainerName": "inputs"}], wd)
    assert (error.code, error.category) == ("AutoStorageNotConfigured", "usererror")
    assert "BATCHFLOW_STORAGE_CONNECTION_STRING" in error.message


def test_auto_storage_missing_container_is_blob_not_found(azurite: Azurite, wd: Path) -> None:
    auto = AutoStorage(connection_string=azurite.connection_string)
    error = fails([{"autoStorageContainerName": "no-such-container"}], wd, auto_storage=auto)
    assert error.code == "BlobNotFound"
    assert_no_secret(error, azurite.account_key)


def test_several_forms_in_one_task(
    azurite: Azurite, container: str, http_server: HttpServer, wd: Path
) -> None:
    auto = AutoStorage(connection_string=azurite.connection_string)
    sas = azurite.sas_url(container, "rl")
    fetch(
        [
            {"httpUrl": http_server.serve("h.txt", b"H"), "filePath": "h.txt"},
            {"storageContainerUrl": sas, "blobPrefix": "a"},
            {"storageContainerUrl": sas, "blobPrefix": "d/e/"},
            {"autoStorageContainerName": container, "blobPrefix": "data/"},
        ],
        wd,
        auto_storage=auto,
    )
    assert sorted(files_under(wd)) == ["a.txt", "d/e/f.txt", "data/x.csv", "h.txt"]


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
    ("path", "code"),
    [
        ("/slow/3/c", "BlobDownloadTimedOut"),  # the listing never answers in time
        ("/status/500", "BlobDownloadMiscError"),
        ("/status/404", "BlobNotFound"),
    ],
)
def test_container_failures_on_the_wire(
    http_server: HttpServer, wd: Path, path: str, code: str
) -> None:
    policy = TransferPolicy(timeout=0.2, retries=0, backoff=0)
    url = http_server.url(f"{path}?sv=2024&sig=c2VjcmV0")
    error = fails([{"storageContainerUrl": url}], wd, policy=policy)
    assert error.code == code
    assert_no_secret(error, "c2VjcmV0")


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


EMPTY_LISTING = (
    b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="c">'
    b"<Blobs /><NextMarker /></EnumerationResults>"
)


def test_container_requests_are_retried(http_server: HttpServer, wd: Path) -> None:
    name = f"flaky-{uuid.uuid4().hex}.xml"
    http_server.serve(name, EMPTY_LISTING)
    url = http_server.url(f"/flaky/2/{name}?sv=2024&sig=x")
    fetch([{"storageContainerUrl": url}], wd, policy=TransferPolicy(retries=2, backoff=0))
    assert http_server.flaky_failures[name] == 3  # two 503s, then the listing
    assert list(wd.iterdir()) == []


def test_container_retries_back_off_like_url_retries() -> None:
    from batchflow.storage.blobs import _client_options

    retry = _client_options(TransferPolicy(retries=3, backoff=0.5))["retry_policy"]
    assert [retry.get_backoff_time({"count": n}) for n in range(3)] == [0.5, 1.0, 2.0]
    assert retry.total_retries == 3


def test_one_client_per_container_within_a_call(azurite: Azurite, container: str) -> None:
    from batchflow.storage.blobs import ContainerClients

    auto = AutoStorage(connection_string=azurite.connection_string)
    clients = ContainerClients(FAST, auto)
    url = azurite.sas_url(container, "rl")
    first = clients.by_url(url)
    assert clients.by_url(url) is first
    assert clients.by_url(azurite.sas_url(container, "r")) is not first
    assert clients.by_name(container, auto) is clients.by_name(container, auto)
    assert [b.name for b in first.list_blobs(name_starts_with="a")] == ["a.txt"]
    clients.close()
