"""Submitting a job that exists attaches to it (batchflow's rule, built on Batch's ids)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.dsl import Job
from batchflow.exceptions import SubmitError
from tests.local.conftest import run

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
    with pytest.raises(SubmitError) as caught:
        backend.submit(changed)
    assert "'a'" in str(caught.value) and "commandLine" in str(caught.value)
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
    with pytest.raises(SubmitError, match="completed"):
        backend.submit(again)
    # batchflow's --replace reopens it: only the new task runs
    assert backend.submit(again, replace=True).added == 1
    from tests.local.conftest import wait_until_done

    status = wait_until_done(backend, "closed")
    assert status.state == "completed" and status.counts.succeeded == 2


def test_required_slots_above_a_node_is_bad_input(backend: LocalBackend) -> None:
    from batchflow.exceptions import InvalidFieldError

    job = Job("too-big")
    job.task("t", "/bin/true", required_slots=8)
    with pytest.raises(InvalidFieldError) as caught:
        backend.submit(job)
    assert (caught.value.task_id, caught.value.field) == ("t", "requiredSlots")


def test_the_stored_definitions_are_those_of_task_definition(tmp_path: Path) -> None:
    """`definitions` writes simple tasks from the columns: the same text, every shape."""
    from batchflow.backends.local.catalog import _canonical, definitions, task_definition

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
    expected = [_canonical(task_definition(task)) for task in job.tasks]
    assert definitions(job) == expected
