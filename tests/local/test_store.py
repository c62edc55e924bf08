"""The state store: one connection per thread, closed together."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from batchflow.backends.local.store import Store


def test_close_closes_the_connections_of_every_thread(tmp_path: Path) -> None:
    """A server's threads each open a connection; closing the store closes them all."""
    store = Store(tmp_path / "state")
    opened: list[sqlite3.Connection] = []

    def read() -> None:
        store.one("SELECT count(*) FROM jobs")
        opened.append(store.conn)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
