"""The engine started ahead of the job: it waits for the commit, and never outlives a no-show.

Real engine processes: `LocalBackend.start_early` (and `batchflow submit`, which calls it
before it loads the flow) starts one; it touches nothing until `submit` says "go".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from batchflow.backends.local import LocalBackend
from batchflow.backends.local.control import EarlyEngine, engine_pid
from batchflow.backends.local.paths import StateDir
from batchflow.dsl import Job
from tests.local.conftest import run, wait_for, wait_until_done


def engines_on(state_dir: Path) -> list[int]:
    """Pids of live engine processes started for `state_dir` (by their command line),
    not counting an engine's helper (a fork with the same command line)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                argv = source.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as source:
                fields = source.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        engine = b"batchflow.backends.local.engine" in argv
        if engine and fields[0] != b"Z" and os.fsencode(state_dir) in argv:
            found[int(entry)] = int(fields[1])
    return sorted(pid for pid, parent in found.items() if parent not in found)


def test_an_early_engine_runs_the_job_once_it_is_committed(state_dir: Path) -> None:
    backend = LocalBackend(state_dir, slots=2)
    backend.start_early()
    wait_for(lambda: engines_on(state_dir))  # it is up, waiting...
    assert not state_dir.exists()  # ...without touching the state directory
    job = Job("early", on_all_tasks_complete="terminatejob")
    for i in range(5):
        job.task(f"t{i}", "/bin/true")
    status = run(backend, job)
    assert status.counts.succeeded == 5
    assert (state_dir / "engine.log").exists()  # it logs there once it runs
    backend.close()


def test_an_early_engine_that_gets_no_job_exits_and_leaves_nothing(state_dir: Path) -> None:
    backend = LocalBackend(state_dir)
    backend.start_early()
    wait_for(lambda: engines_on(state_dir))
    backend.close()
    wait_for(lambda: not engines_on(state_dir))
    assert not state_dir.exists()


def test_a_bad_submit_cancels_the_early_engine(state_dir: Path, tmp_path: Path) -> None:
    from batchflow.exceptions import InputNotFoundError

    backend = LocalBackend(state_dir)
    job = Job("missing")
    job.task("t", "/bin/true", inputs=[str(tmp_path / "nowhere.csv")])
    try:
        backend.submit(job)
    except InputNotFoundError:
        pass
    else:
        raise AssertionError("a missing input was accepted")
    wait_for(lambda: not engines_on(state_dir))
    backend.close()


def test_with_an_engine_running_the_early_one_hands_over(state_dir: Path) -> None:
    first = LocalBackend(state_dir, slots=2)
    job = Job("long")
    job.task("sleeper", "sleep 30")
    first.submit(job)
    wait_for(lambda: (engine_pid(StateDir(state_dir)) or -1) > 0)  # its pid is written
    running = engine_pid(StateDir(state_dir))
    # an early engine started while another runs gets "B" and wakes the running one
    early = EarlyEngine(StateDir(state_dir))
    second = LocalBackend(state_dir, slots=2)
    quick = Job("quick")
    quick.task("t", "/bin/true")
    from batchflow.backends.local.attach import submit_flow
    from batchflow.backends.local.service import BatchService

    submit_flow(BatchService(StateDir(state_dir), engine=False), quick)
    early.go()
    assert wait_until_done(second, "quick").counts.succeeded == 1
    assert engine_pid(StateDir(state_dir)) == running  # the same engine ran both
    wait_for(lambda: engines_on(state_dir) == [running])  # the early one, told "B", left
    first.terminate("long")
    wait_until_done(first, "long")
    first.close()
    second.close()


def test_the_cli_starts_the_engine_early_and_an_invalid_flow_leaves_nothing(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "cycle.py"
    flow.write_text(
        "import time\n"
        "from batchflow import Job\n"
        "time.sleep(1)  # a flow that takes a while to build\n"
        "job = Job('cyc')\n"
        "job.task('a', '/bin/true', after=['b'])\n"
        "job.task('b', '/bin/true', after=['a'])\n"
    )
    state = tmp_path / "state"
    cli = subprocess.Popen(
        [sys.executable, "-m", "batchflow", "submit", str(flow), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    wait_for(lambda: engines_on(state))  # started while the flow is still loading
    assert cli.poll() is None
    _, stderr = cli.communicate(timeout=60)
    assert cli.returncode == 2, stderr
    assert "cycle" in stderr and "Traceback" not in stderr
    wait_for(lambda: not engines_on(state))
    assert not state.exists()
