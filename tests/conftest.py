"""Shared fixtures: a clean environment for every test, paths to the fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.servers import azurite, http_server  # noqa: F401 - session fixtures for every test

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = Path(__file__).resolve().parent / "fixtures" / "tutorial"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BATCHFLOW_* or AZURE_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("BATCHFLOW_", "AZURE_")):
            monkeypatch.delenv(name)
