"""Output files uploaded to a real Azurite: naming, conditions, headers, logs, failure codes,
and no SAS token anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from batchflow.exceptions import FileUploadError
from batchflow.storage import AutoStorage, TransferPolicy, upload_output_files
from tests.servers import Azurite, HttpServer, free_port

FAST = TransferPolicy(timeout=5.0, retries=0, backoff=0.0)


def output(
    pattern: str,
    url: str,
    path: str | None = None,
    condition: str = "taskCompletion",
    headers: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"containerUrl": url}
    if path is not None:
        container["path"] = path
    if headers is not None:
        container["uploadHeaders"] = headers
    return {
        "filePattern": pattern,
        "destination": {"container": container},
        "uploadOptions": {"uploadCondition": condition},
    }


def upload(
    specs: list[dict[str, Any]], task_dir: Path, exit_code: int | None = 0, **kwargs: Any
) -> None:
    kwargs.setdefault("policy", FAST)
    upload_output_files(specs, task_dir, exit_code=exit_code, **kwargs)


def upload_fails(specs: list[dict[str, Any]], task_dir: Path, **kwargs: Any) -> FileUploadError:
    with pytest.raises(FileUploadError) as caught:
        upload(specs, task_dir, **kwargs)
    return caught.value


def signature(sas_url: str) -> str:
    return parse_qs(urlsplit(sas_url).query)["sig"][0]


def assert_secret_free(task_dir: Path, secret: str, error: FileUploadError | None = None) -> None:
    from urllib.parse import quote

    texts = [
        (task_dir / "fileuploadout.txt").read_text(),
        (task_dir / "fileuploaderr.txt").read_text(),
    ]
    if error is not None:
        texts += [str(error), error.message, repr(error.args), repr(error.details)]
    for text in texts:
        assert secret not in text
        assert quote(secret, safe="") not in text


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    """A task after its command ran: logs in the task dir, results in wd/."""
    root = tmp_path / "task"
    files = {
        "stdout.txt": "out",
        "stderr.txt": "err",
        "wd/a.txt": "A",
        "wd/b.txt": "B",
        "wd/.hidden.txt": "H",
        "wd/result.csv": "x,y",
        "wd/out/r.txt": "R",
        "wd/out/a/b.txt": "AB",
        "wd/out/a/c/d.txt": "ACD",
        "wd/report/summary.json": "{}",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def sink(azurite: Azurite) -> tuple[Any, str]:
    """A fresh container and a read/write/list SAS URL for it."""
    client = azurite.new_container()
    return client, azurite.sas_url(client.container_name, "rwl")


def blobs(client: Any) -> dict[str, bytes]:
    return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # wildcards: `path` is a prefix; dot files are not matched
        ("*.txt", "task1", {"task1/a.txt": b"A", "task1/b.txt": b"B"}),
        # no wildcard: `path` is the full blob name
        ("result.csv", "final/result-001.csv", {"final/result-001.csv": b"x,y"}),
        # no path: the container root, under the file's name
        ("report/summary.json", None, {"summary.json": b"{}"}),
        # `**` keeps the sub-path below the pattern's non-wildcard part
        ("out/**/*.txt", "p", {"p/r.txt": b"R", "p/a/b.txt": b"AB", "p/a/c/d.txt": b"ACD"}),
        # the documented example: the task's own logs, from the task directory
        ("../std*.txt", "mytask", {"mytask/stdout.txt": b"out", "mytask/stderr.txt": b"err"}),
    ],
)
def test_matched_files_land_at_batch_blob_names(
    task_dir: Path,
    sink: tuple[Any, str],
    pattern: str,
    path: str | None,
    expected: dict[str, bytes],
) -> None:
    client, url = sink
    upload([output(pattern, url, path)], task_dir)
    assert blobs(client) == expected
    log = (task_dir / "fileuploadout.txt").read_text()
    assert log.count("uploaded '") == len(expected)
    assert "/../" not in log


def test_environment_variables_in_patterns(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    upload([output("$SUB/*.txt", url, "x")], task_dir, env={"SUB": "out"})
    assert blobs(client) == {"x/r.txt": b"R"}


def test_zero_matches_is_not_an_error(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    upload([output("*.png", url)], task_dir)
    assert blobs(client) == {}
    assert "no files match" in (task_dir / "fileuploadout.txt").read_text()
    assert (task_dir / "fileuploaderr.txt").read_text() == ""


@pytest.mark.parametrize(
    ("condition", "exit_code", "uploaded"),
    [
        ("taskSuccess", 0, True),
        ("taskSuccess", 1, False),
        ("taskFailure", 0, False),
        ("taskFailure", 1, True),
        ("TaskCompletion", 0, True),
        ("taskcompletion", 137, True),
    ],
)
def test_upload_condition(
    task_dir: Path, sink: tuple[Any, str], condition: str, exit_code: int, uploaded: bool
) -> None:
    client, url = sink
    upload([output("a.txt", url, condition=condition)], task_dir, exit_code=exit_code)
    assert blobs(client) == ({"a.txt": b"A"} if uploaded else {})
    log = (task_dir / "fileuploadout.txt").read_text()
    assert ("uploaded 'wd/a.txt'" in log) is uploaded
    assert ("skipped" in log) is not uploaded


def test_a_task_that_never_ran_uploads_nothing_and_writes_no_log(
    task_dir: Path, sink: tuple[Any, str]
) -> None:
    client, url = sink
    upload([output("a.txt", url)], task_dir, exit_code=None)
    assert blobs(client) == {}
    assert not (task_dir / "fileuploadout.txt").exists()


def test_no_output_files_writes_no_log(task_dir: Path) -> None:
    upload([], task_dir, exit_code=0)
    assert not (task_dir / "fileuploadout.txt").exists()
    assert not (task_dir / "fileuploaderr.txt").exists()


def test_upload_headers_become_blob_properties(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    headers = [
        {"name": "x-ms-blob-content-type", "value": "text/csv"},
        {"name": "Content-Type", "value": "application/x-ignored"},  # x-ms-blob-* wins
        {"name": "x-ms-blob-cache-control", "value": "max-age=60"},
        {"name": "Content-Language", "value": "en-GB"},
        {"name": "x-ms-meta-owner", "value": "render-team"},
    ]
    upload([output("result.csv", url, "r.csv", headers=headers)], task_dir)
    props = client.get_blob_client("r.csv").get_blob_properties()
    assert props.content_settings.content_type == "text/csv"
    assert props.content_settings.cache_control == "max-age=60"
    assert props.content_settings.content_language == "en-GB"
    assert props.metadata == {"owner": "render-team"}


def test_without_headers_blobs_are_octet_streams(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    upload([output("a.txt", url)], task_dir)
    props = client.get_blob_client("a.txt").get_blob_properties()
    assert props.content_settings.content_type == "application/octet-stream"


def test_uploads_overwrite_and_log_each_file(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    client.upload_blob("a.txt", b"old")
    upload([output("*.txt", url)], task_dir)
    assert blobs(client)["a.txt"] == b"A"
    log = (task_dir / "fileuploadout.txt").read_text().splitlines()
    assert len([line for line in log if "uploaded" in line]) == 2
    assert any("uploaded 'wd/b.txt' (1 bytes)" in line and "/b.txt'" in line for line in log)
    assert_secret_free(task_dir, signature(url))


def test_a_missing_container_is_file_upload_container_not_found(
    task_dir: Path, azurite: Azurite
) -> None:
    missing = azurite.new_container(create=False).container_name
    url = azurite.sas_url(missing, "rwl")
    error = upload_fails([output("a.txt", url)], task_dir)
    assert (error.code, error.category) == ("FileUploadContainerNotFound", "usererror")
    assert "outputFiles[0]" in error.message
    record = json.loads((task_dir / "fileuploaderr.txt").read_text().splitlines()[0])
    assert record["code"] == "FileUploadContainerNotFound"
    assert record["file"] == "wd/a.txt"
    assert record["destination"] == f"{azurite.account_url}/{missing}"
    assert_secret_free(task_dir, signature(url), error)


@pytest.mark.parametrize("permission", ["rl", "r"])  # a SAS without write permission
def test_a_read_only_sas_is_an_authentication_failure(
    task_dir: Path, azurite: Azurite, permission: str
) -> None:
    client = azurite.new_container()
    url = azurite.sas_url(client.container_name, permission)
    error = upload_fails([output("a.txt", url)], task_dir)
    assert (error.code, error.category) == ("FileUploadAuthenticationFailed", "usererror")
    assert_secret_free(task_dir, signature(url), error)


def test_a_forged_sas_is_an_authentication_failure(task_dir: Path, sink: tuple[Any, str]) -> None:
    _, url = sink
    forged = url.replace("sig=", "sig=Zm9yZ2Vk")
    error = upload_fails([output("a.txt", forged)], task_dir)
    assert error.code == "FileUploadAuthenticationFailed"
    assert_secret_free(task_dir, signature(forged), error)


def test_an_unreachable_account_is_a_misc_upload_error(task_dir: Path, azurite: Azurite) -> None:
    url = azurite.sas_url("somewhere", "rwl").replace(str(azurite.port), str(free_port()))
    error = upload_fails([output("a.txt", url)], task_dir)
    assert (error.code, error.category) == ("FileUploadMiscError", "servererror")
    assert_secret_free(task_dir, signature(url), error)


def test_every_entry_is_tried_and_the_first_failure_is_raised(
    task_dir: Path, azurite: Azurite, sink: tuple[Any, str]
) -> None:
    client, url = sink
    missing = azurite.sas_url(azurite.new_container(create=False).container_name, "rwl")
    error = upload_fails(
        [output("a.txt", missing), output("b.txt", url), output("*.txt", missing, "x")],
        task_dir,
    )
    assert "outputFiles[0]" in error.message
    assert blobs(client) == {"b.txt": b"B"}
    records = (task_dir / "fileuploaderr.txt").read_text().splitlines()
    assert [json.loads(r)["outputFile"] for r in records] == ["outputFiles[0]", "outputFiles[2]"]


def test_an_unknown_upload_condition_is_a_user_error(task_dir: Path, sink: tuple[Any, str]) -> None:
    _, url = sink
    error = upload_fails([output("a.txt", url, condition="taskComplete")], task_dir)
    assert (error.code, error.category) == ("FileUploadMiscError", "usererror")


def test_an_invalid_pattern_is_a_user_error(task_dir: Path, sink: tuple[Any, str]) -> None:
    _, url = sink
    error = upload_fails([output("[z-a]", url)], task_dir)
    assert error.category == "usererror"


def test_the_auto_storage_account_credential_serves_urls_without_sas(
    task_dir: Path, azurite: Azurite
) -> None:
    client = azurite.new_container()
    url = f"{azurite.account_url}/{client.container_name}"
    with pytest.raises(FileUploadError):  # anonymous: refused
        upload([output("a.txt", url)], task_dir)
    auto = AutoStorage(connection_string=azurite.connection_string)
    upload([output("a.txt", url)], task_dir, auto_storage=auto)  # as a managed identity
    assert blobs(client) == {"a.txt": b"A"}
    assert_secret_free(task_dir, azurite.account_key)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/slow/3/c", "timed out"),  # the upload gets no answer in time
        ("/status/500", "HTTP 500"),
    ],
)
def test_failures_on_the_wire_are_misc_upload_errors(
    task_dir: Path, http_server: HttpServer, path: str, reason: str
) -> None:
    policy = TransferPolicy(timeout=0.2, retries=0, backoff=0)
    url = http_server.url(f"{path}?sv=2024&sp=w&sig=c2VjcmV0")
    error = upload_fails([output("a.txt", url)], task_dir, policy=policy)
    assert (error.code, error.category) == ("FileUploadMiscError", "servererror")
    assert reason in error.message
    assert_secret_free(task_dir, "c2VjcmV0", error)


def test_tags_tier_and_other_headers_are_passed_on(task_dir: Path, sink: tuple[Any, str]) -> None:
    client, url = sink
    headers = [
        {"name": "x-ms-tags", "value": "stage=render&frame=7"},
        {"name": "x-ms-access-tier", "value": "cool"},  # any case
        {"name": "x-ms-blob-content-md5", "value": "8QvDyUt34da5+YEG2vM1wQ=="},  # md5("x,y")
    ]
    upload([output("result.csv", url, "r.csv", headers=headers)], task_dir)
    blob = client.get_blob_client("r.csv")
    assert blob.get_blob_tags() == {"stage": "render", "frame": "7"}
    props = blob.get_blob_properties()
    assert props.blob_tier == "Cool"
    assert bytes(props.content_settings.content_md5).hex() == "f10bc3c94b77e1d6b9f98106daf335c1"


@pytest.mark.parametrize(
    "header",
    [
        {"name": "x-ms-blob-content-md5", "value": "not base64!"},
        {"name": "x-ms-access-tier", "value": "Lukewarm"},
        {"name": "", "value": "nameless"},
    ],
)
def test_a_bad_upload_header_is_a_user_error(
    task_dir: Path, sink: tuple[Any, str], header: dict[str, str]
) -> None:
    client, url = sink
    error = upload_fails([output("a.txt", url, headers=[header])], task_dir)
    assert (error.code, error.category) == ("FileUploadMiscError", "usererror")
    assert blobs(client) == {}
