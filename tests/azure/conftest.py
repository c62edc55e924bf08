"""Helpers for the Azure backend's tests: `batchflow emulator` as its own process."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchflow.backends.local.paths import StateDir
from batchflow.emulator.server import stop_engine


def unsigned_jwt(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A well-formed, unsigned JWT: what the emulator's TLS mode and Azurite's
    `--oauth basic` accept (they check its form and claims, not a signature)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part(header or {'alg': 'none'})}.{part(claims)}.sig"


def clean_env() -> dict[str, str]:
    """This process's environment without Azure or batchflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHFLOW_"))}


@contextlib.contextmanager
def emulator_process(state: str | Path, *args: str) -> Iterator[str]:
    """`batchflow emulator --port 0 --state-dir STATE ARGS...` running; its endpoint."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchflow",
            "emulator",
            "--port",
            "0",
            "--state-dir",
            str(state),
            *args,
        ],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split()[2]
    finally:
        server.terminate()
        server.communicate(timeout=30)
        stop_engine(StateDir(Path(state)))
