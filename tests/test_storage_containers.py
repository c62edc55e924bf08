"""Resource files from blob containers in a real Azurite: storageContainerUrl with
blobPrefix, autoStorageContainerName, SAS permissions, failures on the wire, retries."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from batchflow.storage import AutoStorage, TransferPolicy
from tests.servers import Azurite, HttpServer
from tests.test_storage import FAST, assert_no_secret, fails, fetch, mode_of
from tests.test_storage import wd as wd  # the fixture

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
