"""`export --job-only` then `--tasks-only`: the pair `az batch` takes, in Batch's order."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from batchflow.cli.main import app

runner = CliRunner()

FLOW = """\
from batchflow import Job
job = Job("squares", on_all_tasks_complete="terminatejob", max_task_retry_count=1)
nums = job.map("sq-{i}", "/bin/sh -c 'echo $(({i}*{i}))'", i=range(3), wall_clock="1m")
job.task("sum", "/bin/true", after=nums, wall_clock="1m")
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_job_only_is_a_job_add_body_with_noaction_and_the_commands(tmp_path: Path) -> None:
    flow = tmp_path / "squares.py"
    flow.write_text(FLOW)
    code, out, err = invoke("export", str(flow), "--job-only", "--pool-id", "p")
    assert code == 0
    body = json.loads(out)
    assert body["onAllTasksComplete"] == "noaction"
    assert body["poolInfo"] == {"poolId": "p"}
    assert "tasks" not in body
    # The order, and the command that sets the flow's value once the tasks are in.
    assert "az batch job create --json-file job.json" in err
    assert "az batch task create --job-id squares --json-file tasks.json" in err
    assert "az batch job set --job-id squares --on-all-tasks-complete terminatejob" in err
    assert "batchflow update squares --on-all-tasks-complete terminatejob" in err


def test_job_only_without_a_pool_is_refused_with_the_fix(tmp_path: Path) -> None:
    flow = tmp_path / "squares.py"
    flow.write_text(FLOW)
    code, out, err = invoke("export", str(flow), "--job-only")
    assert (code, out) == (2, "")
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: {flow}:2: job 'squares' poolInfo: the job has no poolInfo")
    assert "--pool-id" in line


def test_the_exported_pair_submitted_in_order(tmp_path: Path, state_dir: Path) -> None:
    flow = tmp_path / "squares.py"
    flow.write_text(FLOW)
    job_file, tasks_file = tmp_path / "out" / "job.json", tmp_path / "out" / "tasks.json"
    s = ("--state-dir", str(state_dir))
    assert invoke("export", str(flow), "--job-only", "--pool-id", "p", "-o", str(job_file))[0] == 0
    assert invoke("export", str(flow), "--tasks-only", "-o", str(tasks_file))[0] == 0

    # The job alone: created, and it does not complete while it has no tasks.
    code, out, _ = invoke("submit", str(job_file), *s)
    assert code == 0
    assert "job created with no tasks" in out
    status = json.loads(invoke("status", "squares", *s, "--output", "json")[1])
    assert status["state"] == "active"

    # Then its tasks: a task file adds tasks to the job as it is (Add Task Collection).
    code, out, err = invoke("submit", str(tasks_file), "--job-id", "squares", *s)
    assert code == 0, err
    assert "4 tasks added" in out
    status = json.loads(invoke("status", "squares", *s, "--output", "json")[1])
    assert status["counts"]["succeeded"] == 4
    assert status["state"] == "active"  # noaction, as exported: nothing ends it yet
    assert invoke("logs", "squares", "sq-2", *s)[1] == "4\n"

    # Last, the flow's own onAllTasksComplete (`az batch job set`): the job completes.
    code, _, err = invoke("update", "squares", "--on-all-tasks-complete", "terminatejob", *s)
    assert code == 0, err
    code, out, _ = invoke("status", "squares", "--watch", *s)
    assert "squares  completed (AllTasksComplete)" in out
