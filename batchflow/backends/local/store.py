"""The local engine's state: one SQLite file in WAL mode, shared by the engine and every CLI.

The engine is the only process that moves tasks between states; CLI processes add jobs and
tasks (`submit`), file requests (terminate, delete) and read. WAL lets readers work while
the engine writes. Commits use `synchronous=NORMAL`: a commit is in the OS page cache when
`COMMIT` returns, so a `kill -9` of any process loses nothing that was committed (a power
cut may lose the last moments, which a crash of the machine would lose on Batch too).

Tasks are rows keyed by (job, seq) with small integer states; the full definition is one
JSON column read only when the task starts. A job row keeps task counts up to date (each
writer adds its deltas), so `status` is one row read however large the job is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchflow.backends.local.sealing import Sealer
from batchflow.exceptions import StateError

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "FAILURE",
    "KIND_MANAGER",
    "KIND_TASK",
    "PREPARING",
    "RUNNING",
    "STATE_NAMES",
    "SUCCESS",
    "Store",
    "state_error",
]

# Task states (Batch's names in STATE_NAMES) and results.
ACTIVE, PREPARING, RUNNING, COMPLETED = 0, 1, 2, 3
STATE_NAMES = ("active", "preparing", "running", "completed")
SUCCESS, FAILURE = 0, 1
# Task kinds: an ordinary task, the job manager task.
KIND_TASK, KIND_MANAGER = 0, 1

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,          -- lower(id): ids are unique case-insensitively
    spec TEXT NOT NULL,                -- the job's wire JSON (no tasks)
    base_dir TEXT,                     -- folder of the flow file: inputs= are relative to it
    state TEXT NOT NULL,
    previous_state TEXT,
    state_time REAL NOT NULL,
    previous_state_time REAL,
    creation_time REAL NOT NULL,
    end_time REAL,
    terminate_reason TEXT,
    request TEXT,                      -- 'terminate' or 'delete', filed by a CLI
    request_reason TEXT,
    rev INTEGER NOT NULL DEFAULT 0,    -- bumped whenever a CLI adds or replaces tasks
    settled INTEGER NOT NULL DEFAULT 0,-- 1: nothing runs and nothing can start
    ntasks INTEGER NOT NULL DEFAULT 0,
    n_active INTEGER NOT NULL DEFAULT 0,
    n_running INTEGER NOT NULL DEFAULT 0,
    n_succeeded INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0,
    n_done INTEGER NOT NULL DEFAULT 0  -- completions so far (orders done_seq)
);
CREATE TABLE IF NOT EXISTS tasks(
    job INTEGER NOT NULL,
    seq INTEGER NOT NULL,              -- position in the job; the job manager task is -1
    id TEXT NOT NULL COLLATE NOCASE,
    def TEXT NOT NULL,                 -- wire JSON without id, plus batchflow's inputs/outputs
    deps BLOB,                         -- seqs of the tasks it waits for (int32 array)
    slots INTEGER,                     -- requiredSlots when above 1
    kind INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL DEFAULT 0,
    prev INTEGER,
    state_time REAL NOT NULL,
    prev_time REAL,
    creation_time REAL NOT NULL,
    start REAL,
    end REAL,
    exit_code INTEGER,
    result INTEGER,
    failure TEXT,                      -- failureInfo JSON, secrets redacted
    satisfied INTEGER,                 -- effective dependencyAction: 1 satisfy, 0 block
    retries INTEGER NOT NULL DEFAULT 0,
    requeues INTEGER NOT NULL DEFAULT 0,
    last_retry REAL,
    last_requeue REAL,
    node TEXT,
    done_seq INTEGER,
    PRIMARY KEY(job, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_id ON tasks(job, id);
CREATE INDEX IF NOT EXISTS tasks_failed ON tasks(job, done_seq) WHERE result = 1;
CREATE TABLE IF NOT EXISTS prep(
    job INTEGER NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,                -- 'preparation' or 'release'
    state TEXT NOT NULL,               -- running, completed
    start REAL,
    end REAL,
    exit_code INTEGER,
    result INTEGER,
    failure TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(job, node, kind)
) WITHOUT ROWID;
"""


def state_error(exc: BaseException, where: Path) -> StateError:
    """One clear line for a state store that cannot be used."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "disk is full" in text or "disk I/O error" in text:
        why = "the disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text:
        why = "it is not writable"
    elif "unable to open" in text:
        why = "it cannot be opened (is the directory writable?)"
    elif "not a database" in text or "malformed" in text:
        why = "the file is not a batchflow state file (or is damaged)"
    else:
        why = text
    return StateError(
        f"cannot use the state directory '{where}': {why} "
        "(choose another with --state-dir or BATCHFLOW_STATE_DIR)"
    )


class Store:
    """A connection to the state file (creating the directory and schema on first use)."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        self.path = root / "state.db"
        #: Secrets in job and task definitions are sealed when written (`seal`) and come
        #: back in clear from every query (see sealing.py).
        self.sealer = Sealer(root / "secret.key")
        self.seal = self.sealer.seal
        try:
            if create:
                root.mkdir(parents=True, exist_ok=True)
                if not os.access(root, os.W_OK):
                    raise PermissionError(errno.EACCES, "not writable", str(root))
            elif not self.path.exists():
                raise StateError(f"no batchflow state in '{root}' (nothing was submitted here)")
            self.conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False
            )
            self.conn.row_factory = self._row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # The engine commits once per loop iteration, a few pages each: checkpoint
            # (copy the WAL back, fsync) every 10,000 pages (40 MB) instead of 1,000,
            # since each checkpoint costs about the same however much it copies.
            self.conn.execute("PRAGMA wal_autocheckpoint=10000")
            if create:
                self._create()
        except (sqlite3.Error, OSError) as exc:
            raise state_error(exc, root) from None

    def _row(self, cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> tuple[Any, ...]:
        for value in row:
            if type(value) is str and "sealed:" in value:
                unseal = self.sealer.unseal
                return tuple(unseal(v) if type(v) is str else v for v in row)
        return row

    def _create(self) -> None:
        self.conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)", (SCHEMA_VERSION,)
            )

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); errors become `StateError`."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise state_error(exc, self.root) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise state_error(exc, self.root) from None
            raise

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a read query."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise state_error(exc, self.root) from None

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """The first row of a read query, or None."""
        try:
            return self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise state_error(exc, self.root) from None

    def get_meta(self, key: str) -> str | None:
        """A value of the meta table (pool settings, schema version)."""
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
