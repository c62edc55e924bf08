"""Fixtures for the local engine: a state directory in tmp_path and a way to run a job.

Every test uses a real engine process, real task processes and a real SQLite file. An
engine exits by itself when it has nothing left to do; `engine_cleanup` kills (by its
recorded pid) any engine a test left behind, so no test leaks a process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchflow.backends.base import JobStatus
from batchflow.backends.local import LocalBackend, control
from batchflow.backends.local.paths import StateDir
from batchflow.dsl import Job

WAIT = 60.0


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh state directory; any engine still running on it is killed afterwards."""
    root = tmp_path / "state"
    yield root
    stop_engine(root)


def stop_engine(root: Path) -> None:
    """Kill the engine of `root`, its helper and its tasks (tests only start their own)."""
    control.stop_engine(StateDir(root))


@pytest.fixture
def backend(state_dir: Path) -> Iterator[LocalBackend]:
    """A local backend with 2 slots on one node."""
    instance = LocalBackend(state_dir, slots=2)
    yield instance
    instance.close()


def wait_until_done(backend: LocalBackend, job_id: str, timeout: float = WAIT) -> JobStatus:
    """Wait until the job is completed or can make no more progress."""
    deadline = time.monotonic() + timeout
    while True:
        status = backend.job_status(job_id)
        if status.state == "completed" or status.settled:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still running after {timeout}s: {status}")
        backend.ensure_progress(job_id)
        time.sleep(0.02)


def run(backend: LocalBackend, job: Job, *, replace: bool = False) -> JobStatus:
    """Submit `job` and wait for it."""
    backend.submit(job, replace=replace)
    return wait_until_done(backend, job.id)


def wait_for(condition: object, timeout: float = WAIT) -> None:
    """Wait until `condition()` is true."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def in_private_mounts(
    script: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`sh -c script args...` as root of new user and mount namespaces: it may mount a
    tmpfs, and the mount goes away with it (no privileges needed, no mount left)."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed for this test"
    namespaces = ["--user", "--map-root-user", "--mount", "--propagation", "private"]
    return subprocess.run(
        [unshare, *namespaces, "sh", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
