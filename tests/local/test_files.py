"""Files of a task, for real: inputs=/outputs=, resource files over HTTP and from Azurite,
output files to Azurite, and the failures Batch reports when they go wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.dsl import Job
from tests.local.conftest import run, stop_engine
from tests.servers import Azurite, HttpServer

SH = "/bin/sh -c"


def test_inputs_are_staged_and_outputs_collected(
    backend: LocalBackend, tmp_path: Path, state_dir: Path
) -> None:
    flow_dir = tmp_path / "flow"
    (flow_dir / "data").mkdir(parents=True)
    (flow_dir / "data" / "in.txt").write_text("3\n4\n")
    job = Job("io")
    job.source = str(flow_dir / "flow.py")
    job.task(
        "sum",
        '/usr/bin/awk \'{s += $1} END {system("mkdir -p out"); print s > "out/total.txt"}\' in.txt',
        inputs=["data/in.txt"],
        outputs=["out/*.txt"],
    )
    status = run(backend, job)
    assert status.counts.succeeded == 1
    collected = state_dir / "results" / "io" / "sum" / "out" / "total.txt"
    assert collected.read_text() == "7\n"
    assert status.outputs_location == str(state_dir / "results" / "io")
    # the staged input is a copy: the user's file is untouched
    assert (flow_dir / "data" / "in.txt").read_text() == "3\n4\n"


def test_a_missing_input_is_an_error_before_anything_runs(
    backend: LocalBackend, tmp_path: Path
) -> None:
    from batchflow.exceptions import FlowError

    job = Job("missing-input")
    job.source = str(tmp_path / "flow.py")
    job.task("t", "/bin/true", inputs=["nope.csv"])
    with pytest.raises(FlowError) as caught:
        backend.submit(job)
    assert (caught.value.task_id, caught.value.field) == ("t", "inputs")
    assert not backend.jobs()


def test_resource_files_over_http(backend: LocalBackend, http_server: HttpServer) -> None:
    url = http_server.serve("script.sh", b"#!/bin/sh\necho fetched\n")
    job = Job("http")
    job.task(
        "t",
        "./bin/script.sh",
        resource_files=[{"httpUrl": url, "filePath": "bin/script.sh", "fileMode": "0755"}],
    )
    run(backend, job)
    assert backend.read_file("http", "t", "stdout.txt") == b"fetched\n"


def test_a_failed_download_is_a_preprocessing_error_of_that_task_only(
    backend: LocalBackend, http_server: HttpServer
) -> None:
    job = Job("preprocessing")
    job.task(
        "bad",
        "/bin/true",
        retries=3,
        resource_files=[{"httpUrl": http_server.url("/status/404"), "filePath": "x"}],
    )
    job.task("good", "/bin/true")
    status = run(backend, job)
    bad = backend.task("preprocessing", "bad")
    assert bad.result == "failure" and bad.exit_code is None
    assert bad.retry_count == 0  # pre-processing errors are not retried
    assert bad.failure_info is not None and bad.failure_info.code == "BlobNotFound"
    assert status.counts.succeeded == 1


def test_auto_storage_resources_and_output_files(
    state_dir: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHFLOW_STORAGE_CONNECTION_STRING", azurite.connection_string)
    source = azurite.new_container()
    source.upload_blob("in/a.txt", b"alpha")
    target = azurite.new_container()
    sas = azurite.sas_url(target.container_name)
    backend = LocalBackend(state_dir, slots=2)
    job = Job("blobs")
    job.task(
        "t",
        f"{SH} 'cat data/in/a.txt > result.txt; env | grep -c CONNECTION_STRING; true'",
        resource_files=[
            {
                "autoStorageContainerName": source.container_name,
                "blobPrefix": "in/",
                "filePath": "data",
            }
        ],
        output_files=[
            {
                "filePattern": "result.txt",
                "destination": {"container": {"containerUrl": sas, "path": "out/result.txt"}},
                "uploadOptions": {"uploadCondition": "taskSuccess"},
            }
        ],
    )
    run(backend, job)
    task = backend.task("blobs", "t")
    assert task.result == "success", task.failure_info
    assert target.download_blob("out/result.txt").readall() == b"alpha"
    # the storage account's secret never reaches the task's environment
    assert backend.read_file("blobs", "t", "stdout.txt").strip() == b"0"
    backend.close()
    stop_engine(state_dir)


def test_a_failed_upload_is_a_file_upload_error(backend: LocalBackend, azurite: Azurite) -> None:
    missing = azurite.new_container(create=False)
    sas = azurite.sas_url(missing.container_name)
    job = Job("upload")
    job.task(
        "t",
        f"{SH} 'echo hi > r.txt'",
        retries=2,
        output_files=[
            {
                "filePattern": "r.txt",
                "destination": {"container": {"containerUrl": sas}},
                "uploadOptions": {"uploadCondition": "taskCompletion"},
            }
        ],
    )
    run(backend, job)
    task = backend.task("upload", "t")
    assert (task.result, task.exit_code, task.retry_count) == ("failure", 0, 0)
    assert task.failure_info is not None
    assert task.failure_info.code.startswith("FileUpload")
    # no secret in what is stored for people
    assert "sig=" not in task.failure_info.message or "sig=***" in task.failure_info.message


def test_sas_signatures_are_never_in_the_state_file(
    state_dir: Path, azurite: Azurite, http_server: HttpServer
) -> None:
    from urllib.parse import parse_qs, urlsplit

    target = azurite.new_container()
    sas = azurite.sas_url(target.container_name)
    signature = parse_qs(urlsplit(sas).query)["sig"][0]
    url = http_server.serve("in.txt", b"beta") + "?sv=2024&sig=HttpSecretSig123"
    backend = LocalBackend(state_dir, slots=2)
    job = Job("secrets")
    job.task(
        "t",
        f"{SH} 'cat in.txt > result.txt'",
        resource_files=[{"httpUrl": url, "filePath": "in.txt"}],
        output_files=[
            {
                "filePattern": "result.txt",
                "destination": {"container": {"containerUrl": sas, "path": "r.txt"}},
                "uploadOptions": {"uploadCondition": "taskSuccess"},
            }
        ],
    )
    run(backend, job)
    task = backend.task("secrets", "t")
    # The engine got the real URLs back: the download and the upload both worked.
    assert task.result == "success", task.failure_info
    assert target.download_blob("r.txt").readall() == b"beta"
    backend.close()
    stop_engine(state_dir)
    stored = b"".join(p.read_bytes() for p in state_dir.glob("state.db*"))
    assert b"HttpSecretSig123" not in stored
    assert signature.encode() not in stored
    assert b"sealed:" in stored
    for log in state_dir.rglob("*.txt"):
        assert b"HttpSecretSig123" not in log.read_bytes(), log
