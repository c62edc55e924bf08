"""A task's files: list, read with a byte range, properties, delete (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import refused, sh, task_in, wait_for

#: What the task writes: stdout, and files under its working directory.
SCRIPT = "echo hello; mkdir -p sub; printf 0123456789 > out.txt; printf deep > sub/deep.txt"


@pytest.fixture
def done(client: Any, new_job: Any) -> str:
    """A job whose completed task `t` wrote stdout.txt, wd/out.txt and wd/sub/deep.txt."""
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": sh(SCRIPT)})
    assert task_in(client, job_id, "t", "completed")["executionInfo"]["exitCode"] == 0
    return job_id


def test_list_files_shows_the_top_level_of_the_task_directory(client: Any, done: str) -> None:
    entries = {e["name"]: e for e in client.list_files(done, "t")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(entries)
    assert entries["wd"]["isDirectory"] is True
    assert entries["stdout.txt"]["isDirectory"] is False
    assert not any(name.startswith("wd/") for name in entries)


def test_list_files_recursive_shows_every_file(client: Any, done: str) -> None:
    entries = {e["name"]: e for e in client.list_files(done, "t", recursive=True)}
    assert {"stdout.txt", "wd", "wd/out.txt", "wd/sub", "wd/sub/deep.txt"} <= set(entries)
    assert entries["wd/sub"]["isDirectory"] is True
    assert entries["wd/out.txt"]["properties"]["contentLength"] == "10"


def test_read_file_returns_its_bytes(client: Any, done: str) -> None:
    assert client.read_file(done, "t", "stdout.txt") == b"hello\n"
    assert client.read_file(done, "t", "wd/sub/deep.txt") == b"deep"


def test_read_file_with_a_byte_range(client: Any, done: str) -> None:
    assert client.read_file(done, "t", "wd/out.txt", offset=2, length=3) == b"234"
    assert client.read_file(done, "t", "wd/out.txt", offset=7) == b"789"


def test_file_properties_give_the_length_as_a_string(client: Any, done: str) -> None:
    properties = client.file_properties(done, "t", "wd/out.txt")
    assert properties["isDirectory"] is False
    assert properties["properties"]["contentLength"] == "10"
    assert properties["properties"]["lastModified"].endswith("Z")


def test_delete_file_removes_it(client: Any, done: str) -> None:
    client.delete_file(done, "t", "wd/out.txt")
    names = [e["name"] for e in client.list_files(done, "t", recursive=True)]
    assert "wd/out.txt" not in names
    assert "wd/sub/deep.txt" in names
    with refused("FileNotFound", job_id=done, task_id="t"):
        client.read_file(done, "t", "wd/out.txt")


def test_read_missing_file_is_file_not_found(client: Any, done: str) -> None:
    with refused("FileNotFound", job_id=done, task_id="t"):
        client.read_file(done, "t", "wd/nothing.txt")


def test_properties_of_a_missing_file_is_file_not_found(client: Any, done: str) -> None:
    with refused("FileNotFound", job_id=done, task_id="t"):
        client.file_properties(done, "t", "nothing.txt")


def test_delete_missing_file_is_file_not_found(client: Any, done: str) -> None:
    with refused("FileNotFound", job_id=done, task_id="t"):
        client.delete_file(done, "t", "nothing.txt")


def test_path_leaving_the_task_directory_is_refused(client: Any, done: str) -> None:
    client.add_task(done, {"id": "other", "commandLine": sh("echo secret")})
    task_in(client, done, "other", "completed")
    with refused("InvalidPropertyValue", job_id=done, task_id="t"):
        client.read_file(done, "t", "../other/stdout.txt")
    with refused("InvalidPropertyValue", job_id=done, task_id="t"):
        client.file_properties(done, "t", "wd/../../other/stdout.txt")
    with refused("InvalidPropertyValue", job_id=done, task_id="t"):
        client.delete_file(done, "t", "../other/stdout.txt")
    assert client.read_file(done, "other", "stdout.txt") == b"secret\n"


def test_files_of_an_active_task_are_operation_invalid(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(
        job_id,
        {"id": "t", "commandLine": sh("exit 0"), "dependsOn": {"taskIds": ["never-added"]}},
    )
    with refused("OperationInvalidForCurrentState", job_id=job_id, task_id="t"):
        client.list_files(job_id, "t")
    with refused("OperationInvalidForCurrentState", job_id=job_id, task_id="t"):
        client.read_file(job_id, "t", "stdout.txt")


def test_files_of_a_running_task_can_be_read(client: Any, new_job: Any, gate: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": gate("g").command()})
    task_in(client, job_id, "t", "running")
    names = wait_for(
        lambda: [e["name"] for e in client.list_files(job_id, "t")],
        lambda found: "stdout.txt" in found,  # the task's directory is made as it starts
        "stdout.txt listed",
    )
    assert "wd" in names
    assert client.read_file(job_id, "t", "stdout.txt") == b""


def test_files_of_an_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.list_files(job_id, "nope")
