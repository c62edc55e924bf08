"""`batchflow.testing` and the `batchflow_local` fixture, as a user's own test suite uses them:
a real pytest run in a subprocess, with the fixture found through the package's entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.recovery import task_groups
from batchflow.exceptions import FlowInvalid, FlowLoadError
from batchflow.testing import LocalBatch, RunResult

FLOW = """\
from batchflow import Job

job = Job("nightly", pool="main", on_all_tasks_complete="terminatejob")
parts = job.map(
    "part-{i}", "/bin/sh -c 'echo {i} > part.txt'", i=range(3), outputs=["part.txt"],
    wall_clock="1m",
)
job.task("merge", "/bin/sh -c 'cat nightly/*/part.txt | sort'", inputs=[parts], wall_clock="1m")
"""

USER_TESTS = """\
import pytest
from batchflow import Job
from batchflow.exceptions import FlowInvalid, FlowLoadError


def test_the_flow_runs(batchflow_local):
    result = batchflow_local.submit("flows/nightly.py")
    assert result.succeeded, result.failures
    assert result["nightly"].state == "completed"
    assert result.log("merge") == "0\\n1\\n2\\n"
    assert (result.results() / "part-2" / "part.txt").read_text() == "2\\n"


def test_a_failure_is_reported(batchflow_local):
    job = Job("broken", pool="main")
    job.task("bad", "/bin/sh -c 'echo no disk >&2; exit 3'")
    result = batchflow_local.submit(job)
    assert not result.succeeded
    assert result.failures == ['✗ bad  exit 3  stderr: "no disk"']
    assert result.log("bad", stderr=True) == "no disk\\n"


def test_an_invalid_flow_raises(batchflow_local, tmp_path):
    cycle = tmp_path / "cycle.json"
    cycle.write_text(
        '[{"id": "a", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["b"]}},'
        ' {"id": "b", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["a"]}}]'
    )
    with pytest.raises(FlowInvalid, match="cycle"):
        batchflow_local.submit(cycle, job_id="loop", pool_id="main")


def test_a_task_that_never_ends_times_out(batchflow_local, tmp_path):
    job = Job("stuck", pool="main")
    gate = tmp_path / "never"
    job.task("wait", f"/bin/sh -c 'until test -e {gate}; do sleep 0.05; done'")
    with pytest.raises(TimeoutError, match="stuck: 0 active, 1 running"):
        batchflow_local.submit(job, timeout=1)
"""


def test_a_users_suite_runs_flows_with_the_fixture(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "nightly.py").write_text(FLOW)
    (project / "test_flows.py").write_text(USER_TESTS)
    base = tmp_path / "basetemp"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    # The stuck task was stopped with its engine when its test ended.
    states = [StateDir(path) for path in base.glob("*0/batchflow")]  # not the 'current' links
    assert any(state.root.parent.name.startswith("test_a_task_that_never") for state in states)
    assert all(task_groups(state, None) == set() for state in states)


def test_local_batch_outside_pytest(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    with LocalBatch(tmp_path / "state", slots=2) as batch:
        first = batch.submit(flow)
        again = batch.submit(flow)  # attaches: nothing new, the same outcome
    assert first.succeeded and again.succeeded
    assert first["nightly"].counts.succeeded == again["nightly"].counts.succeeded == 4
    both = RunResult({"nightly": first["nightly"], "again": again["nightly"]}, first.batch)
    with pytest.raises(ValueError, match=r"the flow has 2 jobs: name one \(nightly, again\)"):
        both.results()
    assert both.results("again").name == "again"


def test_a_flow_that_does_not_load_or_validate_raises_and_runs_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo.py"
    typo.write_text(FLOW.replace("inputs=[parts]", 'after="nope"'))
    warned = tmp_path / "warned.py"
    warned.write_text(FLOW.replace(', wall_clock="1m")', ")"))  # no wall clock: a warning
    with LocalBatch(tmp_path / "state") as batch:
        with pytest.raises(FlowLoadError, match="'nope' is not in job 'nightly'"):
            batch.submit(typo)
        with pytest.raises(FlowInvalid, match="maxWallClockTime"):
            batch.submit(warned, strict=True)
        assert batch.backend.jobs() == []
