"""pytest fixtures for testing Azure Batch code offline (registered by the package).

- `batch_emulator`: a running emulator for one test (`EmulatorHandle`: `endpoint`,
  `account_name`, `account_key`, `client`), on a fresh state directory; a pool named
  `pool` of one node with 4 slots exists, so jobs on `poolId: pool` run at once.
- `batch_client`: its ready azure-batch `BatchClient`.
- `azurite_connection_string`: a connection string of an Azurite blob service for the
  session, when Azurite is installed (`node_modules/.bin/azurite-blob` or on PATH);
  the test is skipped otherwise.

    def test_my_job(batch_client):
        pool = BatchPoolInfo(pool_id="pool")
        batch_client.create_job(BatchJobCreateOptions(id="j", pool_info=pool))
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchflow.emulator.server import EmulatorHandle, serve

__all__ = ["azurite_connection_string", "batch_client", "batch_emulator"]

#: Azurite's well-known development account (public, documented by Microsoft).
_AZURITE_ACCOUNT = "devstoreaccount1"
_AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.fixture
def batch_emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """A running emulator with a pool `pool` (one node, 4 slots)."""
    with serve(state_dir=tmp_path / "batch-emulator") as handle:
        handle.client.create_pool(
            {
                "id": "pool",
                "vmSize": "standard_d2s_v3",
                "targetDedicatedNodes": 1,
                "taskSlotsPerNode": 4,
            }
        )
        try:
            yield handle
        finally:
            from batchflow.backends.local.paths import StateDir
            from batchflow.emulator.server import stop_engine

            stop_engine(StateDir(handle.state_dir))


@pytest.fixture
def batch_client(batch_emulator: EmulatorHandle) -> Any:
    """The azure-batch `BatchClient` of `batch_emulator`."""
    return batch_emulator.client


def _azurite_binary() -> str | None:
    local = Path.cwd() / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Azurite blob service for the session (skipped when Azurite is not installed)."""
    binary = _azurite_binary()
    if binary is None or shutil.which("node") is None:
        pytest.skip("Azurite is not installed (npm install azurite)")
    workspace = tmp_path_factory.mktemp("azurite")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(workspace / "azurite.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workspace),
            "--skipApiVersionCheck",
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Azurite did not start; see {workspace / 'azurite.log'}")
            time.sleep(0.05)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={_AZURITE_ACCOUNT};"
            f"AccountKey={_AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{_AZURITE_ACCOUNT};"
        )
    finally:
        process.terminate()
        process.wait(10)
        log.close()
