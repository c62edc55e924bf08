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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from batchflow.backends.local.sealing import Sealer
from batchflow.exceptions import StateError

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "FAILURE",
    "KIND_MANAGER",
    "PREPARING",
    "RUNNING",
    "STATE_NAMES",
    "SUCCESS",
    "Store",
    "begin_immediate",
    "state_error",
]

# Task states (Batch's names in STATE_NAMES) and results.
ACTIVE, PREPARING, RUNNING, COMPLETED = 0, 1, 2, 3
STATE_NAMES = ("active", "preparing", "running", "completed")
SUCCESS, FAILURE = 0, 1
# Task kinds: 0 an ordinary task, 1 the job manager task.
KIND_MANAGER = 1

#: The layout of the state file. A file written by an older release is migrated when it
#: is opened (`_MIGRATIONS`); one written by a newer release is refused.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,          -- lower(id): ids are unique case-insensitively
    spec TEXT NOT NULL,                -- the job's wire JSON (no tasks)
    base_dir TEXT,                     -- folder of the flow file: inputs= are relative to it
    env TEXT,                          -- base environment of its tasks (JSON), from its creator
    state TEXT NOT NULL,
    previous_state TEXT,
    state_time REAL NOT NULL,
    previous_state_time REAL,
    creation_time REAL NOT NULL,
    modified REAL NOT NULL,            -- lastModified; the eTag derives from it
    end_time REAL,
    terminate_reason TEXT,
    nseq INTEGER NOT NULL DEFAULT 0,   -- seq of the next task added
    max_slots INTEGER NOT NULL DEFAULT 1, -- largest requiredSlots of its tasks
    pool_required INTEGER NOT NULL DEFAULT 0, -- 1: runs only on a pool of its poolId (Batch)
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
    seq INTEGER NOT NULL,              -- order of arrival in the job; the job manager is -1
    id TEXT NOT NULL COLLATE NOCASE,
    num INTEGER,                       -- the id's value when it is an integer (ranges)
    def TEXT NOT NULL,                 -- wire JSON without id, plus batchflow's inputs/outputs
    deps BLOB,                         -- seqs of the tasks it waits for (int32 array)
    unresolved INTEGER NOT NULL DEFAULT 0, -- dependencies on tasks not in the job yet
    kids BLOB,                         -- seqs of earlier tasks that were waiting for this one
    slots INTEGER,                     -- requiredSlots when above 1
    kind INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL DEFAULT 0,
    prev INTEGER,
    state_time REAL NOT NULL,
    prev_time REAL,
    creation_time REAL NOT NULL,
    modified REAL NOT NULL,
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
    expires REAL,                      -- when its directory goes (end + retentionTime)
    cleaned INTEGER,                   -- 1: its directory was removed (retention)
    PRIMARY KEY(job, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_id ON tasks(job, id);
CREATE INDEX IF NOT EXISTS tasks_failed ON tasks(job, done_seq) WHERE result = 1;
CREATE INDEX IF NOT EXISTS tasks_num ON tasks(job, num) WHERE num IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_expires ON tasks(expires) WHERE expires IS NOT NULL;
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
-- Work for the engine, in order: what a service call changed that the engine must act
-- on (kill a task, requeue, reload a job's settings). Never overwritten, only consumed.
CREATE TABLE IF NOT EXISTS requests(
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL,
    seq INTEGER,
    op TEXT NOT NULL,
    arg TEXT
);
-- Pools created through the service (the emulator's): each a set of local nodes,
-- `target` nodes of `slots` task slots. A job of the CLI whose poolId names no such
-- pool runs on the state directory's own nodes (the meta settings `slots`, `nodes`).
CREATE TABLE IF NOT EXISTS pools(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,               -- active, deleting
    state_time REAL NOT NULL,
    creation_time REAL NOT NULL,
    modified REAL NOT NULL,
    allocation_state TEXT NOT NULL,    -- steady, resizing
    allocation_time REAL NOT NULL,
    target INTEGER NOT NULL,           -- dedicated + low-priority nodes wanted
    slots INTEGER NOT NULL             -- taskSlotsPerNode
);
-- Dependencies on tasks that are not in the job yet: by id, and by id range.
CREATE TABLE IF NOT EXISTS waits(job INTEGER NOT NULL, key TEXT NOT NULL, child INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS waits_key ON waits(job, key);
CREATE TABLE IF NOT EXISTS wait_ranges(
    job INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    child INTEGER NOT NULL, missing INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wait_ranges_start ON wait_ranges(job, start);
"""


def _migrate_1(conn: sqlite3.Connection, sealer: Sealer) -> None:
    """Schema 1 (batchflow before the service layer) to 2.

    New columns get their values from what is there (lastModified = the last state
    change, the next seq after the last task, the numeric value of integer ids);
    pending requests move to the requests table; secrets sealed by the old cipher are
    sealed again with the current one.
    """
    added = {
        "jobs": (
            "env TEXT",
            "modified REAL NOT NULL DEFAULT 0",
            "nseq INTEGER NOT NULL DEFAULT 0",
            "max_slots INTEGER NOT NULL DEFAULT 1",
            "pool_required INTEGER NOT NULL DEFAULT 0",
        ),
        "tasks": (
            "num INTEGER",
            "unresolved INTEGER NOT NULL DEFAULT 0",
            "kids BLOB",
            "modified REAL NOT NULL DEFAULT 0",
            "expires REAL",
            "cleaned INTEGER",
        ),
    }
    for table, columns in added.items():
        for column in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    _create(conn)
    conn.execute("UPDATE jobs SET modified = state_time")
    conn.execute(
        "UPDATE jobs SET nseq = 1 + coalesce((SELECT max(seq) FROM tasks WHERE job = jobs.rowid), "
        "-1), max_slots = coalesce((SELECT max(slots) FROM tasks WHERE job = jobs.rowid), 1)"
    )
    conn.execute(
        "UPDATE tasks SET modified = state_time, num = CASE WHEN id NOT GLOB '*[^0-9]*' "
        "AND length(id) BETWEEN 1 AND 10 THEN CAST(id AS INTEGER) END"
    )
    conn.execute(
        "INSERT INTO requests(job, op, arg) SELECT rowid, request, request_reason FROM jobs "
        "WHERE request IS NOT NULL"
    )
    conn.execute("UPDATE jobs SET request = NULL")
    seal = sealer.seal
    for job, seq, text in conn.execute(
        "SELECT job, seq, def FROM tasks WHERE def LIKE '%sealed:%'"
    ).fetchall():
        conn.execute(
            "UPDATE tasks SET def = ? WHERE job = ? AND seq = ?",
            (seal(sealer.unseal(text)), job, seq),
        )
    for rowid, text in conn.execute(
        "SELECT rowid, spec FROM jobs WHERE spec LIKE '%sealed:%'"
    ).fetchall():
        conn.execute("UPDATE jobs SET spec = ? WHERE rowid = ?", (seal(sealer.unseal(text)), rowid))


def _create(conn: sqlite3.Connection) -> None:
    """Create what is missing of the schema, inside the caller's transaction."""
    statement = ""
    for line in _SCHEMA.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


#: Version N -> the function that brings a state file from N to N + 1.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Sealer], None]] = {1: _migrate_1}


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
    return StateError(f"cannot use the state directory '{where}': {why}")


#: How long a writer waits for another one before the store is reported unusable.
BUSY_TIMEOUT = 30.0


def begin_immediate(conn: sqlite3.Connection, root: Path) -> None:
    """`BEGIN IMMEDIATE`, waiting for another writer with fine-grained retries.

    SQLite's own busy handler sleeps 1, 2, 5, 10 ms ... between tries, so a writer that
    collides with a transaction of a few hundred microseconds (the engine's, a service
    call's) loses milliseconds; polling from 50 us up keeps a collision as short as
    the other transaction.
    """
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        pause = 0.00005
        deadline = 0.0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise state_error(exc, root) from None
                now = time.monotonic()
                if not deadline:
                    deadline = now + BUSY_TIMEOUT
                elif now > deadline:
                    raise state_error(exc, root) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
            except sqlite3.Error as exc:
                raise state_error(exc, root) from None
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


class Store:
    """The state file: one SQLite connection per thread, schema created or migrated on open.

    Any number of threads (a server's) and processes (CLIs, the engine) may use one state
    file at once: each thread gets its own connection (a connection shared between
    threads mixes their transactions), writers serialize on `BEGIN IMMEDIATE` and wait up
    to 30 s for each other, readers never wait (WAL).
    """

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        self.path = root / "state.db"
        #: Secrets in job and task definitions are sealed when written (`seal`) and come
        #: back in clear from every query (see sealing.py).
        self.sealer = Sealer(root / "secret.key")
        self.seal = self.sealer.seal
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        try:
            if create:
                root.mkdir(parents=True, exist_ok=True)
                if not os.access(root, os.W_OK):
                    raise PermissionError(errno.EACCES, "not writable", str(root))
            elif not self.path.exists():
                raise StateError(f"no batchflow state in '{root}' (nothing was submitted here)")
            self._open_schema(create)
        except (sqlite3.Error, OSError) as exc:
            raise state_error(exc, root) from None

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise state_error(exc, self.root) from None
        return conn

    def _connect(self) -> sqlite3.Connection:
        # Used by this thread only (thread-local); not checked, so `close` may close it
        # from another thread.
        conn = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False
        )
        conn.row_factory = self._row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # The engine commits once per loop iteration, a few pages each: checkpoint
        # (copy the WAL back, fsync) every 10,000 pages (40 MB) instead of 1,000,
        # since each checkpoint costs about the same however much it copies.
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        # 64 MB of page cache (allocated as used): a job of 100,000 tasks stays in memory,
        # so an add or a read costs the same at its end as at its start.
        conn.execute("PRAGMA cache_size=-65536")
        self._local.conn = conn
        with self._guard:
            self._all.append(conn)
        return conn

    def _row(self, cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> tuple[Any, ...]:
        for value in row:
            if type(value) is str and "sealed:" in value:
                unseal = self.sealer.unseal
                return tuple(unseal(v) if type(v) is str else v for v in row)
        return row

    def _open_schema(self, create: bool) -> None:
        conn = self.conn
        if create:
            conn.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
        found = self.get_meta("schema")
        if found == str(SCHEMA_VERSION):
            return
        with self.write() as db:
            found = self.get_meta("schema")  # another process may have done it meanwhile
            version = int(found) if found and found.isdigit() else None
            if version is None:
                _create(db)
            elif version > SCHEMA_VERSION:
                raise StateError(
                    f"the state directory '{self.root}' was written by a newer batchflow "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}): upgrade batchflow, "
                    "or choose another state directory",
                    elsewhere=False,
                )
            else:
                while version < SCHEMA_VERSION:
                    _MIGRATIONS[version](db, self.sealer)
                    version += 1
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT); errors become `StateError`."""
        conn = self.conn
        begin_immediate(conn, self.root)
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
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise state_error(exc, self.root) from None
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close every thread's connection."""
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
