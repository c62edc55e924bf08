"""pytest fixtures for testing flows (registered by the package).

- `batchflow_local`: a `batchflow.testing.LocalBatch`, the local engine on the test's own
  state directory; its engine and any task still running are stopped when the test ends.

    def test_nightly_flow(batchflow_local):
        result = batchflow_local.submit("flows/nightly.py")
        assert result.succeeded, result.failures

The emulator's fixtures (`batch_emulator`, `batch_client`) are in
`batchflow.emulator.pytest_plugin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchflow.testing import LocalBatch

__all__ = ["batchflow_local"]


@pytest.fixture
def batchflow_local(tmp_path: Path) -> Iterator[LocalBatch]:
    """The local engine on `tmp_path/batchflow` (two slots per node, 10-minute timeout)."""
    with LocalBatch(tmp_path / "batchflow", slots=2) as batch:
        yield batch
