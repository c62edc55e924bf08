"""The service with an engine that is not running when a request is filed.

An engine exits when it has nothing to do; the next service call starts a new one,
which must carry out what that call asked as a running engine would.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchflow.backends.local.control import engine_pid
from batchflow.backends.local.service import BatchService
from tests.local.conftest import wait_for


@pytest.fixture
def service(state_dir: Path) -> Iterator[BatchService]:
    instance = BatchService(state_dir)
    yield instance
    instance.close()


def _idle(service: BatchService) -> None:
    """Wait until the engine has exited (it does when nothing is left to run)."""
    wait_for(lambda: engine_pid(service.state) is None)


def test_release_task_runs_when_a_terminate_starts_the_engine(
    service: BatchService, tmp_path: Path
) -> None:
    released = tmp_path / "released"
    service.create_job(
        {
            "id": "j",
            "poolInfo": {"poolId": "local"},
            "jobPreparationTask": {"commandLine": "/bin/true"},
            "jobReleaseTask": {"commandLine": shlex.join(["/bin/sh", "-c", f"touch {released}"])},
        }
    )
    service.add_task("j", {"id": "t", "commandLine": "/bin/true"})
    wait_for(lambda: service.get_task("j", "t")["state"] == "completed")
    _idle(service)
    service.terminate_job("j")
    wait_for(lambda: service.get_job("j")["state"] == "completed")
    (node,) = service.preparation_status("j")
    assert "jobReleaseTaskExecutionInfo" in node
    assert released.exists()
