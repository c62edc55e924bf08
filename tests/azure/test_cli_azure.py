"""The CLI on an Azure target: `batchflow` processes against `batchflow emulator` through
the azure-batch SDK, found from the AZURE_BATCH_* variables or a stack-outputs file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchflow.emulator.server import EmulatorHandle
from tests.azure.conftest import clean_env, emulator_process

FLOW = """\
from batchflow import Job
job = Job("demo", pool="pool", on_all_tasks_complete="terminatejob")
a = job.task("a", "/bin/echo hello", wall_clock="1m")
job.task("b", "/bin/sh -c 'echo oops >&2; exit 3'", after=[a], wall_clock="1m")
job.task("c", "/bin/echo c", after=[a], wall_clock="1m")
"""


def batchflow(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "batchflow", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def azure_env(batch_emulator: EmulatorHandle, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHFLOW_"))}
    env.update(
        AZURE_BATCH_ENDPOINT=batch_emulator.endpoint,
        AZURE_BATCH_ACCOUNT=batch_emulator.account_name,
        AZURE_BATCH_ACCESS_KEY=batch_emulator.account_key,
        BATCHFLOW_STATE_DIR=str(tmp_path / "local-state"),  # must stay unused
    )
    return env


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return path


def no_secret(done: subprocess.CompletedProcess[str], key: str) -> None:
    assert key not in done.stdout + done.stderr


def test_submit_and_monitor_through_the_variables(
    azure_env: dict[str, str], flow: Path, tmp_path: Path
) -> None:
    key = azure_env["AZURE_BATCH_ACCESS_KEY"]
    done = batchflow("submit", str(flow), env=azure_env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "demo  azure  batch account 'devbatch' (AZURE_BATCH_* variables)  3 tasks added" in (
        done.stdout
    )
    assert "demo  completed (AllTasksComplete)  3 tasks: 2 succeeded, 1 failed" in done.stdout
    assert '✗ b  exit 3  stderr: "oops"' in done.stderr
    status = batchflow("status", "demo", env=azure_env, cwd=tmp_path)
    assert status.returncode == 1 and "azure pool 'pool'" in status.stdout
    tasks = batchflow(
        "tasks", "demo", "--state", "failed", "--output", "json", env=azure_env, cwd=tmp_path
    )
    assert [t["id"] for t in json.loads(tasks.stdout)] == ["b"]
    logs = batchflow("logs", "demo", "b", "--stderr", env=azure_env, cwd=tmp_path)
    assert (logs.returncode, logs.stdout) == (0, "oops\n")
    listing = batchflow("jobs", "--output", "json", env=azure_env, cwd=tmp_path)
    assert [j["id"] for j in json.loads(listing.stdout)] == ["demo"]
    again = batchflow("submit", str(flow), "--output", "json", env=azure_env, cwd=tmp_path)
    result = json.loads(again.stdout)
    assert result["succeeded"] is False
    assert [f["id"] for f in result["jobs"][0]["failed"]] == ["b"]
    for each in (done, status, tasks, logs, listing, again):
        no_secret(each, key)
    assert not (tmp_path / "local-state").exists()


def test_an_outputs_file_before_or_after_the_command(
    batch_emulator: EmulatorHandle, azure_env: dict[str, str], flow: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "batchAccountName": batch_emulator.account_name,
                "batchAccountEndpoint": batch_emulator.endpoint,
                "poolIds": {"main": "pool"},
                "containers": {"inputs": "inputs", "outputs": "outputs", "logs": "logs"},
            }
        )
    )
    env = {
        k: v
        for k, v in azure_env.items()
        if k not in ("AZURE_BATCH_ENDPOINT", "AZURE_BATCH_ACCOUNT")
    }
    flow.write_text(FLOW.replace('pool="pool", ', ""))  # the stack's only pool
    done = batchflow("submit", str(flow), "--stack-outputs", str(outputs), env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "batch account 'devbatch' (outputs.json)" in done.stdout
    status = batchflow("--stack-outputs", str(outputs), "status", "demo", env=env, cwd=tmp_path)
    assert status.returncode == 1 and "azure pool 'pool'" in status.stdout
    inline = batchflow(f"--stack-outputs={outputs}", "jobs", env=env, cwd=tmp_path)
    assert inline.returncode == 0 and "demo" in inline.stdout


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["--stack-outputs", "missing.json", "jobs"], {}, "missing.json does not exist"),
        (["jobs", "--stack", "dev"], {"PATH": "/nonexistent"}, "the Pulumi CLI is not installed"),
        (["submit", "flow.py", "--slots", "2"], {}, "--slots shapes the local engine"),
        (["status", "nope"], {}, "job 'nope' does not exist"),
        (["submit", "nopool.py", "--pool-id", "nope"], {}, "pool 'nope' does not exist"),
        # the backend says what is wrong, the CLI which flag helps
        (["submit", "nopool.py"], {}, "has no pools (none) (name one in the flow (pool="),
        (["submit", "nopool.py"], {}, "or with --pool-id)"),
        (["jobs"], {"AZURE_BATCH_ACCESS_KEY": "d3Jvbmcta2V5"}, "refused the credential"),
        (
            ["jobs"],
            {"AZURE_BATCH_ENDPOINT": "http://127.0.0.1:9"},
            "cannot reach the Batch account",
        ),
    ],
)
def test_bad_targets_and_input_are_one_line_and_exit_2(
    azure_env: dict[str, str],
    flow: Path,
    tmp_path: Path,
    args: list[str],
    extra_env: dict[str, str],
    message: str,
) -> None:
    env = {**azure_env, **extra_env}
    (tmp_path / "nopool.py").write_text(FLOW.replace('pool="pool", ', ""))
    if "PATH" in extra_env:
        env["PATH"] = f"{extra_env['PATH']}{os.pathsep}{Path(sys.executable).parent}"
    done = batchflow(*args, env=env, cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and message in errors[0], done.stderr
    no_secret(done, azure_env["AZURE_BATCH_ACCESS_KEY"])


def test_a_submit_killed_midway_completes_when_run_again(
    batch_emulator: EmulatorHandle, azure_env: dict[str, str], tmp_path: Path
) -> None:
    """The CLI is SIGKILLed while it adds 3,000 tasks; the job is still `noaction` (it
    cannot complete early), and a second `submit` adds the rest, each task once."""
    flow = tmp_path / "many.py"
    flow.write_text(
        "from batchflow import Job\n"
        'job = Job("many", pool="nowhere", on_all_tasks_complete="terminatejob")\n'
        'job.map("t-{i}", "/bin/true", i=range(3000), wall_clock="1m")\n'
    )
    client: Any = batch_emulator.client
    client.create_pool({"id": "nowhere", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0})
    process = subprocess.Popen(
        [sys.executable, "-m", "batchflow", "submit", str(flow), "--detach"],
        env=azure_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    added = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            added = client.get_job_task_counts("many").task_counts.active
        except Exception:  # the job is not created yet
            added = 0
        if added:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert 0 < added < 3000, f"the kill came too late to test anything ({added} added)"
    assert client.get_job("many").as_dict()["onAllTasksComplete"] == "noaction"
    again = batchflow("submit", str(flow), "--detach", env=azure_env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ids = [t.id for t in client.list_tasks("many", select=["id"])]
    assert len(ids) == 3000 and len(set(ids)) == 3000
    assert client.get_job("many").as_dict()["onAllTasksComplete"] == "terminatejob"
    note = again.stdout.splitlines()[0]
    added_now = int(note.split("  ")[-1].split(" tasks added")[0].replace(",", ""))
    assert 0 < added_now <= 3000 - added


def test_an_emulator_with_its_outputs_file_is_a_rehearsal_of_a_stack(tmp_path: Path) -> None:
    """`batchflow emulator --pool ... --write-outputs F` then `submit --stack-outputs F`,
    as the README shows (the key from the environment, as in a pipeline)."""
    from batchflow.emulator import DEV_ACCOUNT_KEY

    env = clean_env()
    outputs = tmp_path / "outputs.json"
    with emulator_process(
        str(tmp_path / "emulator"), "--pool", "main:1:2", "--write-outputs", str(outputs)
    ):
        flow = tmp_path / "flow.py"
        flow.write_text(FLOW.replace('pool="pool", ', ""))
        env["AZURE_BATCH_ACCESS_KEY"] = DEV_ACCOUNT_KEY
        done = batchflow(
            "submit", str(flow), "--stack-outputs", str(outputs), env=env, cwd=tmp_path
        )
        assert done.returncode == 1, done.stderr
        assert "3 tasks: 2 succeeded, 1 failed" in done.stdout
        assert json.loads(outputs.read_text())["poolIds"] == {"main": "main"}


def test_the_tutorials_steps_on_azure(azure_env: dict[str, str], tmp_path: Path) -> None:
    """The tutorial's workflow with batchflow on an Azure target: a job from a Job-Add
    JSON (priority, retries, wall clock), its tasks from a task-array JSON with a
    dependency and a flaky task that succeeds on a retry, onAllTasksComplete set last,
    then status, a filtered listing, stdout, download and delete."""
    (tmp_path / "job.json").write_text(
        json.dumps(
            {
                "id": "tutorial",
                "poolInfo": {"poolId": "pool"},
                "priority": 100,
                "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 2},
                "usesTaskDependencies": True,
                "onAllTasksComplete": "noaction",
            }
        )
    )
    marker = tmp_path / "tried-once"
    (tmp_path / "tasks.json").write_text(
        json.dumps(
            [
                {"id": "download", "commandLine": "/bin/sh -c 'echo data > data.txt'"},
                {
                    "id": "flaky",
                    "commandLine": f"/bin/sh -c 'test -e {marker} || (touch {marker}; exit 1)'",
                    "constraints": {"maxTaskRetryCount": 2},
                },
                {
                    "id": "report",
                    "commandLine": "/bin/echo report done",
                    "dependsOn": {"taskIds": ["download", "flaky"]},
                },
            ]
        )
    )
    created = batchflow("submit", "job.json", env=azure_env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    added = batchflow(
        "submit", "tasks.json", "--job-id", "tutorial", "--detach", env=azure_env, cwd=tmp_path
    )
    assert added.returncode == 0 and "3 tasks added" in added.stdout, added.stderr
    updated = batchflow(
        "update", "tutorial", "--on-all-tasks-complete", "terminatejob", env=azure_env, cwd=tmp_path
    )
    assert updated.returncode == 0, updated.stderr
    watched = batchflow("status", "tutorial", "--watch", env=azure_env, cwd=tmp_path)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    status = batchflow("status", "tutorial", "--output", "json", env=azure_env, cwd=tmp_path)
    job = json.loads(status.stdout)
    assert (job["state"], job["terminateReason"]) == ("completed", "AllTasksComplete")
    assert job["job"]["priority"] == 100
    flaky = batchflow("tasks", "tutorial", "--output", "json", env=azure_env, cwd=tmp_path)
    by_id = {t["id"]: t for t in json.loads(flaky.stdout)}
    assert by_id["flaky"]["executionInfo"]["retryCount"] == 1
    assert by_id["flaky"]["executionInfo"]["result"] == "success"
    logs = batchflow("logs", "tutorial", "report", env=azure_env, cwd=tmp_path)
    assert logs.stdout == "report done\n"
    got = batchflow("download", "tutorial", "download", "wd/data.txt", env=azure_env, cwd=tmp_path)
    assert got.returncode == 0 and (tmp_path / "data.txt").read_text() == "data\n"
    deleted = batchflow("delete", "tutorial", "--yes", env=azure_env, cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    gone = batchflow("status", "tutorial", env=azure_env, cwd=tmp_path)
    assert gone.returncode == 2 and "does not exist" in gone.stderr


def test_control_commands_on_azure(azure_env: dict[str, str], tmp_path: Path) -> None:
    """files, logs --follow, terminate-task, reactivate --failed, disable/enable and
    terminate through the CLI on an Azure target, with gate files ordering events."""
    gate = tmp_path / "gate"
    fixed = tmp_path / "fixed"
    (tmp_path / "ctl.py").write_text(
        "from batchflow import Job\n"
        'job = Job("ctl", pool="pool")\n'
        f'job.task("waits", "/bin/sh -c \'echo started; '
        f"until test -e {gate}; do sleep 0.01; done; echo done'\")\n"
        f'job.task("stuck", "/bin/sh -c \'until test -e {gate}-never; do sleep 0.01; done\'")\n'
        f'job.task("flaky", "/bin/sh -c \'test -e {fixed}\'")\n'
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return batchflow(*args, env=azure_env, cwd=tmp_path)

    assert run("submit", "ctl.py", "--detach").returncode == 0
    follow = subprocess.Popen(
        [sys.executable, "-m", "batchflow", "logs", "ctl", "waits", "--follow"],
        env=azure_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "running" not in run("tasks", "ctl", "--state", "running").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    files = run("files", "ctl", "waits")
    assert files.returncode == 0 and "stdout.txt" in files.stdout
    gate.touch()
    out, err = follow.communicate(timeout=60)
    assert (follow.returncode, out) == (0, "started\ndone\n"), err
    stopped = run("terminate-task", "ctl", "stuck")
    assert stopped.returncode == 0, stopped.stderr
    fixed.touch()
    again = run("reactivate", "ctl", "--failed")
    assert again.returncode == 0, again.stderr
    assert "ctl  2 tasks reactivated" in again.stdout
    assert run("disable", "ctl").returncode == 0
    assert json.loads(run("status", "ctl", "--output", "json").stdout)["state"] == "disabled"
    assert run("enable", "ctl").returncode == 0
    deadline = time.monotonic() + 60
    while json.loads(run("status", "ctl", "--output", "json").stdout)["counts"]["succeeded"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    ended = run("terminate", "ctl")
    assert ended.returncode == 0 and "ctl  completed (UserTerminate)" in ended.stdout
