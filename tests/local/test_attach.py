"""Submitting a job that exists attaches to it (batchflow's rule, built on Batch's ids)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.dsl import Job
from batchflow.exceptions import BackendError
from tests.local.conftest import run, wait_until_done

SH = "/bin/sh -c"


def counting_job(log: Path, ids: list[str], command: str = "echo") -> Job:
    job = Job("attach")
    for task_id in ids:
        job.task(task_id, f"{SH} '{command} {task_id} >> {log}'")
    return job


def test_finished_tasks_are_not_rerun_and_new_ones_are_added(
    backend: LocalBackend, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    run(backend, counting_job(log, ["a", "b"]))
    result = backend.submit(counting_job(log, ["a", "b", "c"]))
    assert (result.added, result.unchanged, result.replaced) == (1, 2, 0)
    from tests.local.conftest import wait_until_done

    status = wait_until_done(backend, "attach")
    assert sorted(log.read_text().split()) == ["a", "b", "c"]
    assert status.counts.succeeded == 3


def test_ids_compare_case_insensitively(backend: LocalBackend, tmp_path: Path) -> None:
    log = tmp_path / "log"
    run(backend, counting_job(log, ["a"]))
    job = Job("ATTACH")
    job.task("A", f"{SH} 'echo a >> {log}'")
    assert backend.submit(job).unchanged == 1


def test_a_changed_task_is_an_error_unless_replace(backend: LocalBackend, tmp_path: Path) -> None:
    log = tmp_path / "log"
    run(backend, counting_job(log, ["a", "b"]))
    changed = counting_job(log, ["a", "b"], command="echo again")
    with pytest.raises(BackendError) as caught:
        backend.submit(changed)
    assert (caught.value.code, caught.value.task_id) == ("TaskDefinitionChanged", "a")
    assert "commandLine" in str(caught.value)
    result = backend.submit(changed, replace=True)
    assert (result.replaced, result.replaced_ids) == (2, ("a", "b"))
    from tests.local.conftest import wait_until_done

    status = wait_until_done(backend, "attach")
    assert status.counts.succeeded == 2
    assert log.read_text().split().count("again") == 2


def test_a_completed_job_takes_no_new_tasks(backend: LocalBackend, tmp_path: Path) -> None:
    job = Job("closed", on_all_tasks_complete="terminatejob")
    job.task("a", "/bin/true")
    run(backend, job)
    again = Job("closed", on_all_tasks_complete="terminatejob")
    again.task("a", "/bin/true")
    assert backend.submit(again).unchanged == 1  # same tasks: attaching is fine
    again.task("b", "/bin/true")
    for replace in (False, True):  # Batch changes nothing in a completed job
        with pytest.raises(BackendError) as caught:
            backend.submit(again, replace=replace)
        assert caught.value.code == "JobCompleted"
    assert backend.job_status("closed").counts.total == 1


def test_required_slots_above_a_node_is_bad_input(backend: LocalBackend) -> None:
    job = Job("too-big")
    job.task("t", "/bin/true", required_slots=8)
    with pytest.raises(BackendError) as caught:
        backend.submit(job)
    assert (caught.value.code, caught.value.task_id) == ("RequiredSlotsUnavailable", "t")
    assert "--" not in str(caught.value)  # the CLI adds its advice (--slots)


def test_the_stored_definitions_are_those_of_task_definition(tmp_path: Path) -> None:
    """`definitions` writes simple tasks from the columns: the same text, every shape."""
    from batchflow.backends.local.catalog import (
        canonical,
        definitions,
        input_digests,
        task_definition,
    )

    (tmp_path / "in.csv").write_text("x\n")
    job = Job("shapes")
    first = job.task("a", "/bin/echo 'quoted \"x\"' ünïcode \\\\ back")
    second = job.task("b", "/bin/true", after=first)
    third = job.task("c", "/bin/true", after=[first, second])
    job.task("d", "echo hi", env={"K": "v"}, after=third)
    job.task("e", "cat in.csv", inputs=[str(tmp_path / "in.csv")], outputs=["*.csv"])
    fan = job.map("f-{i}", "/bin/true", i=range(3), after=third)
    job.task("g", "/bin/true", after=fan)
    numbered = job.map("{i}", "/bin/true", i=range(1, 4))  # numeric ids: taskIdRanges
    job.task("h", "/bin/true", after=numbered)
    job.task("i", "/bin/true", retries=2, after=["a"])
    digests = input_digests(job)
    expected = [canonical(task_definition(task, digests)) for task in job.tasks]
    assert definitions(job) == expected


def test_a_task_only_flow_attaches_to_a_job_with_settings(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """Settings the flow does not state are not compared: a task file adds work."""
    gate = tmp_path / "gate"
    job = Job("settled-job", priority=50, max_task_retry_count=2, max_wall_clock_time="PT1H")
    job.task("first", "/bin/true")
    run(backend, job)
    tasks_only = Job("settled-job")  # what a task-array JSON file makes
    tasks_only.task("second", f"{SH} 'touch {gate}'")
    assert backend.submit(tasks_only).added == 1
    status = wait_until_done(backend, "settled-job")
    assert status.counts.succeeded == 2 and gate.exists()
    wire = status.wire
    assert wire["priority"] == 50 and wire["constraints"]["maxTaskRetryCount"] == 2


def test_replace_changes_only_the_stated_settings(backend: LocalBackend) -> None:
    job = Job("stated", priority=5, max_task_retry_count=3)
    job.task("a", "/bin/true")
    run(backend, job)
    changed = Job("stated", priority=9)
    changed.task("a", "/bin/true")
    with pytest.raises(BackendError) as caught:
        backend.submit(changed)
    assert caught.value.code == "JobDefinitionChanged" and "priority" in str(caught.value)
    backend.submit(changed, replace=True)
    wire = backend.job_status("stated").wire
    assert wire["priority"] == 9
    assert wire["constraints"]["maxTaskRetryCount"] == 3  # not stated: kept


def test_replace_refuses_what_batch_cannot_change(backend: LocalBackend) -> None:
    job = Job("deps-later")
    job.task("a", "/bin/true")
    run(backend, job)
    with_deps = Job("deps-later")
    first = with_deps.task("a", "/bin/true")
    with_deps.task("b", "/bin/true", after=first)  # turns usesTaskDependencies on
    for replace in (False, True):
        with pytest.raises(BackendError) as caught:
            backend.submit(with_deps, replace=replace)
        assert caught.value.code == "TaskDependenciesNotSpecifiedOnJob"
    manager = Job("deps-later", job_manager={"id": "jm", "commandLine": "/bin/true"})
    manager.task("a", "/bin/true")
    with pytest.raises(BackendError) as caught:
        backend.submit(manager, replace=True)
    assert caught.value.code == "PropertyCannotBeUpdated"


def test_a_dependent_may_name_tasks_of_an_earlier_submit(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """The tutorial's merge task, added after its 100 parents (ids 1..100, a range)."""
    import json

    from batchflow.loader import load

    job = Job("later-merge", uses_task_dependencies=True)
    job.map("{i}", "/bin/true", i=range(1, 101))
    run(backend, job)
    tasks = [
        {
            "id": "merge",
            "commandLine": "/bin/true",
            "dependsOn": {"taskIdRanges": [{"start": 1, "end": 100}]},
        },
        {"id": "after-one", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["7"]}},
    ]
    path = tmp_path / "merge.json"
    path.write_text(json.dumps(tasks))
    (merge,) = load(path, job_id="later-merge").jobs
    assert backend.submit(merge).added == 2
    status = wait_until_done(backend, "later-merge")
    assert status.counts.succeeded == 102


def test_a_typo_in_a_dependency_is_still_refused(backend: LocalBackend, tmp_path: Path) -> None:
    import json

    from batchflow.loader import load

    job = Job("typo", uses_task_dependencies=True)
    job.task("a", "/bin/true")
    run(backend, job)
    tasks = [
        {"id": "b", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["a"]}},
        {"id": "c", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["nope"]}},
    ]
    path = tmp_path / "more.json"
    path.write_text(json.dumps(tasks))
    (more,) = load(path, job_id="typo").jobs
    with pytest.raises(BackendError) as caught:
        backend.submit(more)
    assert (caught.value.code, caught.value.task_id) == ("TaskDependencyNotFound", "c")
    assert backend.job_status("typo").counts.total == 1  # nothing of it was added


def test_a_changed_input_file_is_a_changed_task(backend: LocalBackend, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("one\n")

    def flow() -> Job:
        job = Job("inputs-changed")
        job.task("read", "cat data.txt", inputs=[str(data)])
        return job

    run(backend, flow())
    assert backend.submit(flow()).unchanged == 1
    data.write_text("two\n")
    with pytest.raises(BackendError) as caught:
        backend.submit(flow())
    assert (
        caught.value.code == "TaskDefinitionChanged"
        and "the content of its inputs= files changed" in str(caught.value)
    )
    assert backend.submit(flow(), replace=True).replaced == 1
    wait_until_done(backend, "inputs-changed")
    assert backend.read_file("inputs-changed", "read", "stdout.txt") == b"two\n"
