"""A state directory written by the previous release (schema 1) opens, migrated."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from batchflow.backends.local import LocalBackend
from batchflow.backends.local.store import SCHEMA_VERSION, Store
from batchflow.dsl import Job
from batchflow.exceptions import StateError
from tests.local.conftest import wait_until_done

FIXTURE = Path(__file__).parent.parent / "fixtures" / "state-v1"


@pytest.fixture
def old_state(state_dir: Path) -> Path:
    """A copy of a state directory made by batchflow before the service layer."""
    shutil.copytree(FIXTURE, state_dir)
    return state_dir


def test_an_old_state_directory_is_migrated_and_reads_as_before(old_state: Path) -> None:
    backend = LocalBackend(old_state)
    assert [j.id for j in backend.jobs()] == ["finished", "legacy"]
    legacy = backend.job_status("legacy")
    assert (legacy.state, legacy.counts.succeeded, legacy.counts.failed) == ("active", 5, 1)
    assert backend.task("legacy", "bad").failure_info is not None
    assert backend.job_status("finished").terminate_reason == "AllTasksComplete"
    version = (
        sqlite3.connect(old_state / "state.db")
        .execute("SELECT value FROM meta WHERE key = 'schema'")
        .fetchone()[0]
    )
    assert version == str(SCHEMA_VERSION)
    backend.close()


def test_secrets_sealed_by_the_old_release_still_open_and_stay_sealed(old_state: Path) -> None:
    backend = LocalBackend(old_state)
    wire = backend.task("legacy", "ok").wire
    assert wire["environmentSettings"][0]["value"].endswith("sig=SECRETSIG123")
    backend.close()
    assert b"SECRETSIG123" not in (old_state / "state.db").read_bytes()


def test_a_migrated_job_takes_new_tasks_and_runs_them(old_state: Path) -> None:
    backend = LocalBackend(old_state, slots=2)
    more = Job("legacy", pool="legacy-pool", max_task_retry_count=1)
    more.task("new-one", "/bin/true")
    assert backend.submit(more).added == 1
    status = wait_until_done(backend, "legacy")
    assert status.counts.succeeded == 6
    backend.reactivate_task("legacy", "bad")  # a task of the old release, run again
    status = wait_until_done(backend, "legacy")
    assert backend.task("legacy", "bad").retry_count == 1  # /bin/false fails again
    backend.close()


def test_a_state_directory_of_a_newer_release_is_refused_in_one_line(old_state: Path) -> None:
    with sqlite3.connect(old_state / "state.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StateError) as caught:
        Store(old_state)
    assert "newer batchflow" in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_says_what_to_do_once_for_a_newer_state_directory(old_state: Path) -> None:
    with sqlite3.connect(old_state / "state.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    done = subprocess.run(
        [sys.executable, "-m", "batchflow", "jobs", "--state-dir", str(old_state)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "upgrade batchflow" in done.stderr
    assert "--state-dir" not in done.stderr  # its own advice, not the generic one as well
