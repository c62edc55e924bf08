"""The `Backend` protocol's behaviour, once for every backend: the local engine, and the
Azure backend through the real azure-batch SDK against `batchflow emulator` (whose
tasks run on this machine, so file gates order events in both)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchflow.backends.base import Backend, JobStatus
from batchflow.emulator.server import EmulatorHandle
from tests.contract.conftest import wait_for

POOL = "pool"


def settled(backend: Backend, job_id: str) -> JobStatus:
    """The job's status once it cannot progress any more."""
    return wait_for(
        lambda: backend.job_status(job_id),
        lambda s: s.state == "completed" or s.settled,
        f"job {job_id} settled",
    )


class Gate:
    """A file a task waits for: `command()` blocks until `open()`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def command(self, then: str = "true") -> str:
        return f"/bin/sh -c 'until test -e {self.path}; do sleep 0.01; done; {then}'"

    def open(self) -> None:
        self.path.touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Callable[[str], Gate]]:
    made: list[Gate] = []

    def make(name: str) -> Gate:
        made.append(Gate(tmp_path / f"gate-{name}"))
        return made[-1]

    yield make
    for g in made:  # a task still waiting would outlive the test
        g.open()


def azure_backend(handle: EmulatorHandle) -> Backend:
    from batchflow.backends.azure import AzureBackend
    from batchflow.stack import AzureTarget

    target = AzureTarget(
        endpoint=handle.endpoint,
        account_name=handle.account_name,
        source="the emulator",
        account_key=handle.account_key,
        pool_ids={"main": POOL},
    )
    return AzureBackend(target)


@pytest.fixture(params=["local", "azure"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each backend in turn (the Azure one on a fresh emulator with pool `pool`)."""
    if request.param == "local":
        from batchflow.backends.local import LocalBackend
        from batchflow.backends.local.paths import StateDir
        from batchflow.emulator.server import stop_engine

        local = LocalBackend(tmp_path / "state", slots=4)
        try:
            yield local
        finally:
            local.close()
            stop_engine(StateDir(tmp_path / "state"))
    else:
        handle = request.getfixturevalue("batch_emulator")
        remote = azure_backend(handle)
        try:
            yield remote
        finally:
            remote.close()
