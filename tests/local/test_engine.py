"""The engine runs tasks with Azure Batch semantics: real processes, a real SQLite file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.dsl import Job
from tests.local.conftest import run, wait_for, wait_until_done

SH = "/bin/sh -c"


def by_id(backend: LocalBackend, job_id: str) -> dict[str, object]:
    return {t.id: t for t in backend.tasks(job_id)}


def test_a_task_runs_without_a_shell_in_its_working_directory(backend: LocalBackend) -> None:
    job = Job("plain")
    job.task("t", "echo $HOME 'a  b'")
    job.task("pwd", "pwd")
    status = run(backend, job)
    assert status.counts.succeeded == 2
    assert backend.read_file("plain", "t", "stdout.txt") == b"$HOME a  b\n"
    task = backend.task("plain", "pwd")
    assert task.task_dir is not None
    assert backend.read_file("plain", "pwd", "stdout.txt").decode().strip() == os.path.join(
        os.path.realpath(task.task_dir), "wd"
    )


def test_environment_and_directory_layout(backend: LocalBackend, state_dir: Path) -> None:
    job = Job("env-job", pool="mypool", env={"COMMON": "job", "BOTH": "job"})
    job.task("t1", "/usr/bin/env", env={"BOTH": "task"})
    run(backend, job)
    env = dict(
        line.split("=", 1)
        for line in backend.read_file("env-job", "t1", "stdout.txt").decode().splitlines()
        if "=" in line
    )
    root = state_dir / "nodes" / "node-1"
    task_dir = root / "workitems" / "env-job" / "job-1" / "t1"
    assert env["AZ_BATCH_JOB_ID"] == "env-job"
    assert env["AZ_BATCH_TASK_ID"] == "t1"
    assert env["AZ_BATCH_POOL_ID"] == "mypool"
    assert env["AZ_BATCH_NODE_ID"] == "node-1"
    assert env["AZ_BATCH_NODE_ROOT_DIR"] == str(root)
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == str(root / "shared")
    assert env["AZ_BATCH_TASK_DIR"] == str(task_dir)
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(task_dir / "wd")
    assert env["HOME"] == str(task_dir / "wd")
    assert env["PATH"].endswith(f"{root / 'shared'}:{task_dir / 'wd'}")
    # task environmentSettings override the job's commonEnvironmentSettings
    assert (env["COMMON"], env["BOTH"]) == ("job", "task")
    assert "AZ_BATCH_TASK_RETRY_COUNT" not in env
    for sub in ("applications", "fsmounts", "shared", "startup", "volatile", "workitems"):
        assert (root / sub).is_dir()
    names = {f.name for f in backend.files("env-job", "t1")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= names


def test_stdout_and_stderr_go_to_the_task_directory(backend: LocalBackend) -> None:
    job = Job("logs")
    job.task("t", f"{SH} 'echo out; echo err >&2'")
    run(backend, job)
    assert backend.read_file("logs", "t", "stdout.txt") == b"out\n"
    assert backend.read_file("logs", "t", "stderr.txt") == b"err\n"


def test_a_missing_program_is_a_task_failure_not_a_crash(backend: LocalBackend) -> None:
    job = Job("missing")
    job.task("t", "no-such-program --flag")
    job.task("ok", "/bin/true")
    status = run(backend, job)
    task = backend.task("missing", "t")
    assert task.state == "completed" and task.result == "failure"
    assert task.exit_code is None
    assert task.failure_info is not None and task.failure_info.category == "usererror"
    assert "no-such-program" in task.failure_info.message
    assert status.counts.succeeded == 1


def test_dependencies_wait_and_failures_block(backend: LocalBackend, tmp_path: Path) -> None:
    log = tmp_path / "order.txt"
    job = Job("deps")
    a = job.task("a", f"{SH} 'echo a >> {log}'")
    b = job.task("b", f"{SH} 'echo b >> {log}'", after=a)
    job.task("c", f"{SH} 'echo c >> {log}'", after=[a, b])
    bad = job.task("bad", f"{SH} 'exit 2'")
    job.task("blocked", "/bin/true", after=bad)
    status = run(backend, job)
    assert log.read_text().split() == ["a", "b", "c"]
    tasks = by_id(backend, "deps")
    assert tasks["blocked"].state == "active"  # type: ignore[attr-defined]
    assert status.state == "active" and status.settled
    assert (status.counts.succeeded, status.counts.failed, status.counts.active) == (3, 1, 1)


def test_dependency_action_satisfy_releases_dependents(backend: LocalBackend) -> None:
    job = Job("satisfy")
    parent = job.task(
        "parent",
        f"{SH} 'exit 3'",
        exit_conditions={
            "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]
        },
    )
    job.task("child", "/bin/true", after=parent)
    status = run(backend, job)
    tasks = by_id(backend, "satisfy")
    assert tasks["parent"].result == "failure"  # type: ignore[attr-defined]
    assert tasks["child"].result == "success"  # type: ignore[attr-defined]
    assert status.counts.completed == 2


def test_dependency_ranges_ignore_leading_zeros(backend: LocalBackend, tmp_path: Path) -> None:
    marker = tmp_path / "parts"
    marker.mkdir()
    job = Job("ranges")
    parts = job.map("{i:03d}", f"/bin/touch {marker}/{{i}}", i=range(1, 6))
    job.task("merge", f"{SH} 'ls {marker} | wc -l'", after=parts)
    run(backend, job)
    assert backend.read_file("ranges", "merge", "stdout.txt").strip() == b"5"


def test_retries_keep_the_task_directory_and_count(backend: LocalBackend) -> None:
    job = Job("retry", max_task_retry_count=3)
    # fails twice, then succeeds: the counter file lives in the task directory
    script = (
        'n=$(cat ../count 2>/dev/null || echo 0); n=$((n+1)); echo $n > ../count; [ "$n" -ge 3 ]'
    )
    job.task("flaky", f"{SH} '{script}'")
    job.task("never", f"{SH} 'exit 5'", retries=1)
    run(backend, job)
    flaky = backend.task("retry", "flaky")
    assert (flaky.result, flaky.retry_count, flaky.exit_code) == ("success", 2, 0)
    never = backend.task("retry", "never")
    assert (never.result, never.retry_count, never.exit_code) == ("failure", 1, 5)
    assert never.failure_info is not None and never.failure_info.code == "FailureExitCode"


def test_unlimited_retries(backend: LocalBackend) -> None:
    job = Job("forever")
    script = 'n=$(cat ../count 2>/dev/null || echo 0); echo $((n+1)) > ../count; [ "$n" -ge 4 ]'
    job.task("t", f"{SH} '{script}'", retries=-1)
    run(backend, job)
    assert backend.task("forever", "t").retry_count == 4


def test_wall_clock_kills_the_whole_process_group(backend: LocalBackend, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    job = Job("timeout")
    job.task(
        "slow",
        f"{SH} 'sleep 30 & echo $! > {pid_file}; wait'",
        wall_clock="PT0.5S",
        retries=2,
    )
    run(backend, job)
    task = backend.task("timeout", "slow")
    assert task.result == "failure"
    assert task.failure_info is not None and task.failure_info.code == "TaskEnded"
    assert task.exit_code == 137
    assert task.retry_count == 0  # a timeout is not retried
    child = int(pid_file.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_on_all_tasks_complete_terminates_the_job(backend: LocalBackend) -> None:
    job = Job("all-done", on_all_tasks_complete="terminatejob")
    job.task("a", "/bin/true")
    job.task("b", "/bin/false")
    status = run(backend, job)
    assert status.state == "completed"
    assert status.terminate_reason == "AllTasksComplete"
    assert status.end_time is not None


def test_a_job_without_tasks_completes_at_once(backend: LocalBackend) -> None:
    status = run(backend, Job("empty", on_all_tasks_complete="terminatejob"))
    assert status.state == "completed" and status.terminate_reason == "AllTasksComplete"


def test_job_action_terminate_needs_perform_exit_options(backend: LocalBackend) -> None:
    job = Job("jobaction", on_task_failure="performexitoptionsjobaction")
    job.task("bad", f"{SH} 'exit 1'")
    job.task("later", "/bin/true", after="bad")
    status = run(backend, job)
    assert status.state == "completed" and status.terminate_reason == "TaskFailed"
    # tasks not started stay active on a terminated job
    assert backend.task("jobaction", "later").state == "active"


def test_no_job_action_without_perform_exit_options(backend: LocalBackend) -> None:
    job = Job("noaction")
    job.task("bad", f"{SH} 'exit 1'")
    status = run(backend, job)
    assert status.state == "active" and status.settled


def test_job_action_disable_and_none(backend: LocalBackend, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = Job("disable", on_task_failure="performexitoptionsjobaction")
    job.task(
        "soft",
        f"{SH} 'exit 4'",
        exit_conditions={"exitCodes": [{"code": 4, "exitOptions": {"jobAction": "none"}}]},
    )
    job.task(
        "hard",
        f"{SH} 'while [ ! -e {gate} ]; do sleep 0.01; done; exit 5'",
        exit_conditions={"default": {"jobAction": "disable"}},
    )
    backend.submit(job)
    wait_for(lambda: backend.task("disable", "soft").state == "completed")
    gate.touch()  # `hard` fails only once `soft` has completed
    status = wait_until_done(backend, "disable")
    assert status.state == "disabled"


def gated(gate: Path, then: str = "") -> str:
    """A command that waits until `gate` exists, then runs `then` (the test decides when
    it ends)."""
    wait = f"until [ -e {gate} ]; do sleep 0.01; done"
    return f"{SH} '{wait}; {then}'" if then else f"{SH} '{wait}'"


def test_max_parallel_tasks_limits_concurrency(backend: LocalBackend, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = Job("parallel", max_parallel_tasks=1)
    for i in range(4):
        job.task(f"t{i}", gated(gate))
    backend.submit(job)
    try:
        # Every task is ready at once and the node has 2 slots: an engine that ignored the
        # limit would start two in its first scheduling pass, committed together.
        wait_for(lambda: any(t.state == "running" for t in backend.tasks("parallel")))
        states = [t.state for t in backend.tasks("parallel")]  # one read: one snapshot
        assert states.count("running") == 1, states
        # The free slot is there: another job's task gets it while t0 holds the limit.
        probe = Job("probe")
        probe.task("p", "/bin/true")
        assert run(backend, probe).counts.succeeded == 1
        assert backend.job_status("parallel").counts.running == 1
    finally:
        gate.touch()
    assert wait_until_done(backend, "parallel").counts.succeeded == 4


def test_required_slots_take_the_whole_node(backend: LocalBackend, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = Job("slots")
    job.task("big", gated(gate), required_slots=2)
    job.task("small", "/bin/true")
    backend.submit(job)
    try:
        # (The order within a job is not Batch's promise: `small` may have run first.)
        wait_for(lambda: backend.task("slots", "big").state == "running")
        # Make the engine schedule again: it applies a request filed now (a terminate of
        # another job, which cannot start a task either) in a pass that could start
        # `small`, and commits the two together.
        probe = Job("probe")
        probe.task("p", "/bin/true")
        backend.submit(probe)
        backend.terminate("probe")
        wait_for(lambda: backend.job_status("probe").state == "completed")
        tasks = {t.id: t for t in backend.tasks("slots")}  # one read: one snapshot
        big, small = tasks["big"], tasks["small"]
        assert big.state == "running" and big.start_time is not None
        assert small.state == "active" or (
            small.end_time is not None and small.end_time <= big.start_time
        ), (small.state, small.start_time, big.start_time)
    finally:
        gate.touch()
    status = wait_until_done(backend, "slots")
    assert status.counts.succeeded == 2
    big, small = backend.task("slots", "big"), backend.task("slots", "small")
    assert big.start_time and big.end_time and small.start_time and small.end_time
    assert small.start_time >= big.end_time or small.end_time <= big.start_time


def test_higher_priority_jobs_start_first(state_dir: Path, tmp_path: Path) -> None:
    from tests.local.conftest import wait_for, wait_until_done

    log, go = tmp_path / "log", tmp_path / "go"
    backend = LocalBackend(state_dir, slots=1)
    blocker = Job("blocker")
    # holds the only slot until both other jobs are queued
    blocker.task("hold", f"{SH} 'while [ ! -e {go} ]; do sleep 0.02; done'")
    backend.submit(blocker)
    wait_for(lambda: backend.task("blocker", "hold").state == "running")
    low = Job("low", priority=-10)
    low.task("l", f"{SH} 'echo low >> {log}'")
    high = Job("high", priority=100)
    high.task("h", f"{SH} 'echo high >> {log}'")
    backend.submit(low)
    backend.submit(high)
    go.touch()
    for job_id in ("blocker", "low", "high"):
        wait_until_done(backend, job_id)
    assert log.read_text().split() == ["high", "low"]
    backend.close()


def test_job_wall_clock_terminates_the_job(backend: LocalBackend) -> None:
    job = Job("job-timeout", max_wall_clock_time="PT1S")
    job.task("slow", "sleep 30")
    status = run(backend, job)
    assert status.state == "completed"
    assert status.terminate_reason == "MaxWallClockTimeExpiry"
    task = backend.task("job-timeout", "slow")
    assert task.failure_info is not None and task.failure_info.code == "TaskEnded"


def test_nodes_have_their_own_directories(state_dir: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    backend = LocalBackend(state_dir, slots=1, nodes=2)
    job = Job("two-nodes")
    for i in range(4):  # held until both nodes run one: each node has had a task
        job.task(
            f"t{i}", f"{SH} 'echo $AZ_BATCH_NODE_ID; until test -e {gate}; do sleep 0.01; done'"
        )
    backend.submit(job)
    wait_for(lambda: backend.job_status("two-nodes").counts.running == 2)
    gate.touch()
    wait_until_done(backend, "two-nodes")
    nodes = {t.node_id for t in backend.tasks("two-nodes")}
    assert nodes == {"node-1", "node-2"}
    for task in backend.tasks("two-nodes"):
        assert (
            backend.read_file("two-nodes", task.id, "stdout.txt").decode().strip() == task.node_id
        )
    backend.close()


def test_a_disabled_job_runs_again_once_enabled(backend: LocalBackend, tmp_path: Path) -> None:
    from batchflow.exceptions import BackendError

    flag = tmp_path / "second-time"
    job = Job(
        "reenable",
        on_task_failure="performexitoptionsjobaction",
        on_all_tasks_complete="terminatejob",
    )
    # fails and disables the job (while `later` runs: it is requeued)
    job.task(
        "gate",
        f"{SH} 'touch {flag}; exit 3'",
        exit_conditions={"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "disable"}}]},
        retries=0,
    )
    released = tmp_path / "released"
    later = job.task(
        "later",
        f"{SH} 'echo run >> {flag}.later; while [ ! -e {released} ]; do sleep 0.01; done'",
    )
    job.task("after-later", "/bin/true", after=later)
    status = run(backend, job)
    assert status.state == "disabled"
    released.touch()  # `later` was running when the job was disabled; it ends next time
    assert backend.task("reenable", "gate").result == "failure"
    backend.enable("reenable")
    wait_for(lambda: backend.job_status("reenable").state != "disabled")
    status = wait_until_done(backend, "reenable")
    assert status.state == "completed" and status.terminate_reason == "AllTasksComplete"
    later_info = backend.task("reenable", "later")
    assert later_info.result == "success" and later_info.requeue_count == 1
    assert backend.task("reenable", "after-later").result == "success"
    with pytest.raises(BackendError) as caught:
        backend.enable("reenable")
    assert caught.value.code == "OperationInvalidForCurrentState"
