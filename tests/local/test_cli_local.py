"""`submit` and the monitoring commands through typer's CliRunner, with a real engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchflow.cli.main import app

runner = CliRunner()

FLOW = """\
from batchflow import Job
job = Job(
    "cli-job", pool="p", on_all_tasks_complete="terminatejob", max_task_retry_count=1
)
a = job.task("a", "/bin/sh -c 'echo hello from a; echo oops >&2'", wall_clock="1m")
job.task("b", "/bin/sh -c 'echo result > out.txt'", after=a, outputs=["out.txt"], wall_clock="1m")
"""

FAILING = """\
from batchflow import Job
job = Job("cli-fail", on_all_tasks_complete="terminatejob")
job.task("good", "/bin/true")
job.task("bad", "/bin/sh -c 'echo boom >&2; exit 3'")
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return path


def test_submit_waits_and_exits_0_when_every_task_succeeded(flow: Path, state_dir: Path) -> None:
    code, out, err = invoke("submit", str(flow), "--state-dir", str(state_dir))
    assert code == 0, err
    assert "cli-job" in out and "2 succeeded" in out
    assert f"results: {state_dir / 'results' / 'cli-job'}" in out
    assert (state_dir / "results" / "cli-job" / "b" / "out.txt").read_text() == "result\n"


def test_submit_exits_1_and_shows_the_failure(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "fail.py"
    path.write_text(FAILING)
    code, out, err = invoke("submit", str(path), "--state-dir", str(state_dir))
    assert code == 1
    assert "bad" in err and "exit 3" in err and 'stderr: "boom"' in err
    assert "1 failed" in out


def test_submit_json_result(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "fail.py"
    path.write_text(FAILING)
    code, out, _ = invoke("submit", str(path), "--state-dir", str(state_dir), "--output", "json")
    assert code == 1
    result = json.loads(out)
    assert result["succeeded"] is False
    (job,) = result["jobs"]
    assert job["state"] == "completed" and job["terminateReason"] == "AllTasksComplete"
    assert job["counts"]["failed"] == 1
    assert job["failed"][0]["id"] == "bad" and job["failed"][0]["exitCode"] == 3


def test_submit_for_a_pipeline_imports_no_rich(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "fail.py"
    path.write_text(FAILING)
    probe = (
        "import sys\n"
        "from batchflow.cli.main import app\n"
        "try:\n"
        "    app(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print('rich' in sys.modules, file=sys.stderr)\n"
    )
    args = ["submit", str(path), "--state-dir", str(state_dir), "--output", "json"]
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=False
    )
    assert json.loads(result.stdout)["succeeded"] is False
    assert result.stderr.strip().splitlines()[-1] == "False", result.stderr


def test_monitoring_commands(flow: Path, state_dir: Path, tmp_path: Path) -> None:
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(flow), *s)[0] == 0
    code, out, _ = invoke("jobs", *s)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == [
        "job",
        "state",
        "tasks",
        "active",
        "running",
        "succeeded",
        "failed",
        "created",
    ]
    assert row.split()[:7] == ["cli-job", "completed", "(AllTasksComplete)", "2", "0", "0", "2"]
    for column in ("tasks", "active", "running", "succeeded", "failed"):  # numbers: right
        end = header.index(column) + len(column)
        assert row[end - 1].isdigit() and row[end] == " ", column
    code, out, _ = invoke("status", "cli-job", *s, "--output", "json")
    assert code == 0 and json.loads(out)["counts"]["succeeded"] == 2
    code, out, _ = invoke("status", "cli-job", *s)
    assert code == 0 and "2/2" in out
    code, out, _ = invoke("tasks", "cli-job", *s, "--state", "succeeded", "--output", "json")
    assert [t["id"] for t in json.loads(out)] == ["a", "b"]
    assert invoke("logs", "cli-job", "a", *s)[1] == "hello from a\n"
    assert invoke("logs", "cli-job", "a", "--stderr", *s)[1] == "oops\n"
    assert invoke("logs", "cli-job", "a", "--follow", *s)[1] == "hello from a\n"
    code, out, _ = invoke("files", "cli-job", "b", *s, "--output", "json")
    assert {"stdout.txt", "stderr.txt", "wd", "wd/out.txt"} <= {f["name"] for f in json.loads(out)}
    code, out, _ = invoke("files", "cli-job", "b", *s)
    header, *rows = out.splitlines()
    assert header.split() == ["name", "size", "modified"]
    sizes = {row.split()[0]: row.split()[1] for row in rows if not row.split()[0].endswith("/")}
    assert sizes["wd/out.txt"] == "7" and "wd/" in [row.split()[0] for row in rows]
    out_row = next(row for row in rows if row.startswith("wd/out.txt"))
    assert out_row.index("7") == header.index("size") + len("size") - 1  # sizes to the right
    target = tmp_path / "copy.txt"
    code, out, _ = invoke("download", "cli-job", "b", "wd/out.txt", "-o", str(target), *s)
    assert code == 0 and target.read_text() == "result\n"
    code, _, err = invoke("download", "cli-job", "b", "../../../../../etc/passwd", *s)
    assert code == 2 and "outside" in err
    code, out, _ = invoke("delete", "cli-job", "--yes", *s, "--output", "json")
    assert code == 0 and json.loads(out) == {"id": "cli-job", "deleted": True}
    code, _, err = invoke("status", "cli-job", *s)
    assert code == 2 and "job 'cli-job' does not exist" in err


def test_detach_then_terminate(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "slow.py"
    path.write_text('from batchflow import Job\njob = Job("slow")\njob.task("t", "sleep 30")\n')
    s = ("--state-dir", str(state_dir))
    code, out, _ = invoke("submit", str(path), "--detach", *s)
    assert code == 0 and "batchflow status slow" in out
    code, out, _ = invoke("terminate", "slow", "--reason", "enough", *s, "--output", "json")
    assert code == 0
    result = json.loads(out)
    assert result["state"] == "completed" and result["terminateReason"] == "enough"
    code, _, err = invoke("terminate", "slow", *s)
    assert code == 2 and "slow' is completed" in err


def test_a_missing_input_is_exit_2_naming_task_and_field(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(
        'from batchflow import Job\njob = Job("inp")\n'
        'job.task("t1", "/bin/true", inputs=["missing.csv"])\n'
    )
    code, _, err = invoke("submit", str(path), "--state-dir", str(state_dir))
    assert code == 2
    assert "'t1'" in err and "inputs" in err and "missing.csv" in err
    assert len(err.strip().splitlines()) == 1
    assert (
        not (state_dir / "state.db").exists()
        or "inp" not in invoke("jobs", "--state-dir", str(state_dir))[1]
    )


def test_a_changed_task_needs_replace(flow: Path, state_dir: Path) -> None:
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(flow), *s)[0] == 0
    flow.write_text(FLOW.replace("hello from a", "hello again"))
    code, _, err = invoke("submit", str(flow), *s)
    assert code == 2 and "task 'a'" in err and "--replace" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = invoke("submit", str(flow), *s, "--replace")
    # the job completed (onAllTasksComplete): Batch changes nothing in it, --replace neither
    assert code == 2 and "is completed" in err and "batchflow delete cli-job" in err
    assert invoke("delete", "cli-job", "--yes", *s)[0] == 0
    assert invoke("submit", str(flow), *s)[0] == 0
    assert invoke("logs", "cli-job", "a", *s)[1] == "hello again\n"


#: Task-only files adding to a job whose tasks 1..30 and `prep` an earlier submit added.
LATER = {
    # a range over the earlier tasks (the tutorial's merge, added after its parents)
    "range": [{"id": "merge", "dependsOn": {"taskIdRanges": [{"start": 1, "end": 30}]}}],
    # a few ids, each looked up
    "ids": [{"id": "after", "dependsOn": {"taskIds": ["7", "PREP"]}}],
    # more ids than are looked up one by one: the job's listing is read instead
    "many ids": [{"id": f"after-{i}", "dependsOn": {"taskIds": [str(i)]}} for i in range(1, 26)],
}


@pytest.mark.parametrize("name", list(LATER))
def test_validate_and_submit_accept_a_dependency_on_a_task_the_job_has(
    name: str, tmp_path: Path, state_dir: Path
) -> None:
    s = ("--state-dir", str(state_dir))
    first = tmp_path / "first.json"
    tasks = [{"id": str(i), "commandLine": "/bin/true"} for i in range(1, 31)]
    prep = {"id": "prep", "commandLine": "/bin/true"}
    first.write_text(
        json.dumps({"id": "grow", "usesTaskDependencies": True, "tasks": [*tasks, prep]})
    )
    later = tmp_path / "later.json"
    later.write_text(json.dumps([{**t, "commandLine": "/bin/true"} for t in LATER[name]]))
    code, _, err = invoke("validate", str(later), "--job-id", "grow", *s)
    assert code == 2 and ("is not in job 'grow'" in err or "no task exists" in err)  # no job yet
    code, _, err = invoke("submit", str(first), *s)
    assert code == 0, err
    code, _, err = invoke("validate", str(later), "--job-id", "grow", *s)
    assert code == 0, err
    code, out, err = invoke("submit", str(later), "--job-id", "grow", *s, "--output", "json")
    assert code == 0, err
    assert json.loads(out)["jobs"][0]["counts"]["succeeded"] == 31 + len(LATER[name])


def test_validate_and_submit_refuse_a_dependency_neither_in_the_flow_nor_the_job(
    tmp_path: Path, state_dir: Path
) -> None:
    s = ("--state-dir", str(state_dir))
    first = tmp_path / "first.json"
    tasks = [{"id": str(i), "commandLine": "/bin/true"} for i in (1, 2)]
    first.write_text(json.dumps({"id": "grow", "usesTaskDependencies": True, "tasks": tasks}))
    assert invoke("submit", str(first), *s)[0] == 0
    typos = {
        "taskIds": {"taskIds": ["1", "procss"]},
        "taskIdRanges": {"taskIdRanges": [{"start": 1, "end": 3}]},  # 3 is not there
    }
    for field, depends in typos.items():
        later = tmp_path / "later.json"
        later.write_text(
            json.dumps([{"id": "x", "commandLine": "/bin/true", "dependsOn": depends}])
        )
        for command in ("validate", "submit"):
            code, _, err = invoke(command, str(later), "--job-id", "grow", *s)
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            assert code == 2 and len(errors) == 1, (command, err)
            assert f"task 'x' dependsOn.{field}[" in errors[0], (command, err)
    code, out, _ = invoke("status", "grow", *s, "--output", "json")
    assert json.loads(out)["counts"]["completed"] == 2  # nothing of the typos was added


def test_validate_says_what_submit_says_of_dependencies_on_a_job_without_them(
    tmp_path: Path, state_dir: Path
) -> None:
    s = ("--state-dir", str(state_dir))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"id": "a", "commandLine": "/bin/true"}]))
    assert invoke("submit", str(plain), "--job-id", "flat", *s)[0] == 0
    later = tmp_path / "later.json"
    later.write_text(
        json.dumps([{"id": "b", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["a"]}}])
    )
    lines = {}
    for command in ("validate", "submit"):
        code, _, err = invoke(command, str(later), "--job-id", "flat", *s)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1, (command, err)
        lines[command] = errors[0]
    assert lines["validate"] == lines["submit"]
    assert (
        "task 'b' dependsOn: job 'flat' was created without usesTaskDependencies"
        in (lines["validate"])
    )
    # Without a job of that id, the same file is fine as it stands (submit creates the job
    # with usesTaskDependencies) except for its dependency on a task it does not have.
    code, _, err = invoke("validate", str(later), "--job-id", "fresh", *s)
    assert code == 2 and "usesTaskDependencies" not in err


def test_an_unusable_state_dir_is_one_line(flow: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = invoke("submit", str(flow), "--state-dir", str(blocker / "state"))
    assert code == 2
    assert "cannot use the state directory" in err and len(err.strip().splitlines()) == 1
    assert "--state-dir" in err  # the CLI's advice: the store names no flag


def test_nothing_submitted_yet(tmp_path: Path) -> None:
    code, out, _ = invoke("jobs", "--state-dir", str(tmp_path / "none"))
    assert code == 0 and "no jobs" in out
    code, _, err = invoke("status", "x", "--state-dir", str(tmp_path / "none"))
    assert code == 2 and "nothing was submitted" in err


def test_enable_a_job_its_task_disabled(tmp_path: Path, state_dir: Path) -> None:
    flag = tmp_path / "ran"
    path = tmp_path / "disabling.py"
    path.write_text(
        "from batchflow import Job\n"
        "job = Job('dis', on_task_failure='performexitoptionsjobaction',\n"
        "          on_all_tasks_complete='terminatejob')\n"
        f"job.task('first', \"/bin/sh -c 'test -e {flag} || {{ touch {flag}; exit 3; }}'\",\n"
        "         exit_conditions={'default': {'jobAction': 'disable'}})\n"
        "job.task('second', '/bin/true', after='first')  # blocked by first's failure\n"
    )
    s = ("--state-dir", str(state_dir))
    code, out, _ = invoke("submit", str(path), *s)
    assert code == 1  # `first` failed and disabled the job
    code, out, _ = invoke("status", "dis", *s, "--output", "json")
    assert json.loads(out)["state"] == "disabled"
    code, out, err = invoke("enable", "dis", *s)
    assert code == 0, err
    assert out.strip() == "dis  enabled (active)"
    code, _, err = invoke("enable", "dis", *s)  # not disabled any more
    assert code == 2 and "not disabled" in err and len(err.strip().splitlines()) == 1
    code, _, err = invoke("enable", "nosuchjob", *s)
    assert code == 2 and "job 'nosuchjob' does not exist" in err


def test_reactivate_failed_tasks_after_a_fix(tmp_path: Path, state_dir: Path) -> None:
    fixed = tmp_path / "fixed"
    path = tmp_path / "fix.py"
    path.write_text(
        "from batchflow import Job\n"
        "job = Job('fixable')\n"
        f"job.task('a', \"/bin/sh -c 'test -e {fixed}'\")\n"
        f"job.task('b', \"/bin/sh -c 'test -e {fixed}'\")\n"
        "job.task('ok', '/bin/true')\n"
    )
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(path), *s)[0] == 1
    code, out, _ = invoke("tasks", "fixable", "--state", "failed", *s, "--output", "json")
    assert code == 0 and sorted(t["id"] for t in json.loads(out)) == ["a", "b"]
    code, out, _ = invoke("tasks", "fixable", "--state", "succeeded", *s)
    assert code == 0 and "ok" in out and " a " not in out
    code, _, err = invoke("reactivate", "fixable", *s)  # neither tasks nor --failed
    assert code == 2 and "--failed" in err
    code, _, err = invoke("reactivate", "fixable", "ok", *s)
    assert code == 2 and "succeeded" in err and len(err.strip().splitlines()) == 1
    fixed.touch()
    code, out, _ = invoke("reactivate", "fixable", "--failed", *s)
    assert code == 0 and "2 tasks reactivated" in out
    code, out, err = invoke("submit", str(path), *s)  # attaches and follows the new outcome
    assert code == 0, err
    code, out, _ = invoke("status", "fixable", *s, "--output", "json")
    assert json.loads(out)["counts"]["succeeded"] == 3


def test_terminate_task_and_update_a_job(tmp_path: Path, state_dir: Path) -> None:
    gate = tmp_path / "gate"
    path = tmp_path / "hold.py"
    path.write_text(
        "from batchflow import Job\n"
        "job = Job('held', priority=1)\n"
        f"job.task('hold', \"/bin/sh -c 'while [ ! -e {gate} ]; do sleep 0.01; done'\")\n"
    )
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(path), "--detach", *s)[0] == 0
    code, out, err = invoke(
        "update",
        "held",
        "--priority",
        "7",
        "--max-wall-clock-time",
        "2h",
        "--max-parallel-tasks",
        "3",
        *s,
    )
    assert code == 0, err
    assert "priority 7" in out and "wall clock PT2H" in out and "max parallel tasks 3" in out
    code, out, _ = invoke("status", "held", *s)
    assert "priority 7" in out
    code, out, _ = invoke("status", "held", *s, "--output", "json")
    job = json.loads(out)["job"]
    assert job["priority"] == 7 and job["constraints"]["maxWallClockTime"] == "PT2H"
    code, _, err = invoke("update", "held", "--on-all-tasks-complete", "sometimes", *s)
    assert code == 2 and "--on-all-tasks-complete" in err
    code, _, err = invoke("update", "held", *s)
    assert code == 2 and "nothing to change" in err
    code, out, err = invoke("terminate-task", "held", "hold", *s)
    assert code == 0, err
    assert out.strip() == "held hold  completed"
    info = json.loads(invoke("tasks", "held", *s, "--output", "json")[1])[0]
    assert info["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    code, _, err = invoke("terminate-task", "held", "hold", *s)
    assert code == 2 and "already completed" in err
    code, _, err = invoke("terminate-task", "held", "nope", *s)
    assert code == 2 and "has no task 'nope'" in err


def test_a_task_too_big_for_a_node_gets_the_slots_advice(tmp_path: Path, state_dir: Path) -> None:
    path = tmp_path / "big.py"
    path.write_text(
        "from batchflow import Job\njob = Job('big')\n"
        "job.task('wide', '/bin/true', required_slots=4)\n"
    )
    code, _, err = invoke("submit", str(path), "--slots", "2", "--state-dir", str(state_dir))
    assert code == 2 and "task 'wide'" in err and "--slots 4 or more" in err
    # one error line (the flow's warnings come first, each on its own 'warning:' line)
    assert len([line for line in err.splitlines() if not line.startswith("warning:")]) == 1


def test_status_says_when_no_engine_runs_the_job_and_watch_resumes_it(
    tmp_path: Path, state_dir: Path
) -> None:
    import os
    import signal

    from batchflow.backends.local.control import engine_pid
    from batchflow.backends.local.paths import StateDir
    from tests.local.conftest import wait_for

    gate = tmp_path / "gate"
    path = tmp_path / "held.py"
    path.write_text(
        "from batchflow import Job\n"
        "job = Job('orphaned')\n"
        f"job.task('hold', \"/bin/sh -c 'while [ ! -e {gate} ]; do sleep 0.01; done'\")\n"
    )
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(path), "--detach", *s)[0] == 0
    wait_for(lambda: "running 1" in invoke("status", "orphaned", *s)[1])
    code, out, err = invoke("status", "orphaned", *s)
    assert "no engine is running" not in err  # it runs
    pid = engine_pid(StateDir(state_dir))
    assert pid and pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    code, out, err = invoke("status", "orphaned", *s)
    assert "no engine is running" in err and "status orphaned --watch" in err
    code, out, _ = invoke("status", "orphaned", *s, "--output", "json")
    assert "no engine is running" in json.loads(out)["stalled"]
    gate.touch()
    code, out, err = invoke("status", "orphaned", *s, "--watch")
    assert code == 0, err
    assert "no engine is running" not in err
    info = json.loads(invoke("tasks", "orphaned", *s, "--output", "json")[1])[0]
    assert info["executionInfo"]["requeueCount"] == 1  # the dead engine's run was requeued


def test_a_completed_job_is_not_updated_and_the_line_says_what_to_do(
    tmp_path: Path, state_dir: Path
) -> None:
    path = tmp_path / "done.py"
    path.write_text(
        "from batchflow import Job\n"
        "job = Job('done', on_all_tasks_complete='terminatejob')\n"
        "job.task('t', '/bin/true')\n"
    )
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(path), *s)[0] == 0
    code, _, err = invoke("update", "done", "--priority", "7", *s)
    assert code == 2
    assert err == (
        "error: job 'done' is completed: it cannot be updated (to run it again: "
        "`batchflow delete done`, then submit; or use another job id)\n"
    )
