"""A `kill -9` of the engine at any moment loses nothing that was reported.

The engine process is really killed with SIGKILL while tasks run; a new engine takes
over, requeues what was running (requeueCount + 1, as Batch does for a lost node) and
finishes the job. Every result reported before the kill is still there, unchanged, and
only tasks that were running at the kill ran twice.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from batchflow.backends.local import LocalBackend
from batchflow.backends.local.control import engine_pid
from batchflow.backends.local.paths import StateDir
from batchflow.dsl import Job
from tests.local.conftest import wait_for, wait_until_done


def test_sigkill_of_the_engine_mid_run_then_resume(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    gate = tmp_path / "gate"
    backend = LocalBackend(state_dir, slots=2)
    job = Job("crash", on_all_tasks_complete="terminatejob")
    previous = None
    for i in range(40):
        # a chain every 4 tasks, so dependencies are in flight at the kill too; from t10 on
        # each task waits for the gate, so the kill finds both slots running
        after = previous if i % 4 else None
        wait = f"; until test -e {gate}; do sleep 0.01; done" if i >= 10 else ""
        previous = job.task(
            f"t{i:02d}", f"/bin/sh -c 'echo t{i:02d} >> {out}/t{i:02d}{wait}'", after=after
        )
    backend.submit(job)

    def both_slots_gated() -> bool:
        running = [t.id for t in backend.tasks("crash", state="running")]
        done = backend.job_status("crash").counts.completed
        return done > 0 and len(running) == 2 and all(t >= "t10" for t in running)

    wait_for(both_slots_gated)
    pid = engine_pid(StateDir(state_dir))
    assert pid and pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    reported = {t.id: t for t in backend.tasks("crash")}
    running_at_kill = {i for i, t in reported.items() if t.state == "running"}
    done_at_kill = {i: t for i, t in reported.items() if t.state == "completed"}
    assert done_at_kill and len(running_at_kill) == 2
    gate.touch()

    backend.ensure_progress("crash")  # what `submit` does when it finds the engine gone
    status = wait_until_done(backend, "crash")
    assert status.state == "completed" and status.counts.succeeded == 40

    after = {t.id: t for t in backend.tasks("crash")}
    for task_id, before in done_at_kill.items():
        assert after[task_id] == before, f"result of {task_id} changed after the crash"
    ran_twice = {p.name for p in out.iterdir() if len(p.read_text().split()) > 1}
    assert ran_twice == running_at_kill  # killed with the engine, run again: never lost
    assert all(len(p.read_text().split()) >= 1 for p in out.iterdir())
    assert len(list(out.iterdir())) == 40
    requeued = {i for i, t in after.items() if t.requeue_count}
    assert requeued == running_at_kill
    backend.close()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            return source.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_a_new_engine_kills_what_the_dead_one_left_running(state_dir: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    backend = LocalBackend(state_dir, slots=2)
    job = Job("orphans")
    # the task and a child of its own, both in the task's process group
    job.task("stuck", f"/bin/sh -c 'sleep 600 & echo $$ $! >> {pids}; wait'")
    backend.submit(job)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    first = [int(p) for p in pids.read_text().split()]
    assert all(alive(p) for p in first)
    os.kill(engine_pid(StateDir(state_dir)) or 0, signal.SIGKILL)
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    assert all(alive(p) for p in first)  # the task outlives its engine...
    backend.ensure_progress("orphans")
    wait_for(lambda: not any(alive(p) for p in first))  # ...until the next one takes over
    wait_for(lambda: len(pids.read_text().split()) == 4)  # and runs it again
    task = backend.task("orphans", "stuck")
    assert task.state == "running" and task.requeue_count == 1
    backend.terminate("orphans")
    wait_until_done(backend, "orphans")
    backend.close()
