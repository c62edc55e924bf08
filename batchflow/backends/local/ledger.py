"""The engine's shared bookkeeping: one object that every part of the engine receives.

The scheduler (`starting`), the state transitions (`transitions`), preparation and
release (`prepare`), the look-ahead (`lookahead`) and the service requests (`requests`)
all read and change the same few things: the jobs in memory, the running attempts and
their timers, the slots in use on each node, the nodes a job manager holds alone, the
task-count changes not yet written, and the one open write transaction. They live here,
named and documented, instead of being attributes of the engine that each part reaches
into.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.store import Store, begin_immediate, state_error

if TYPE_CHECKING:
    from batchflow.backends.local.jobrun import JobRun
    from batchflow.backends.local.launch import Attempt

__all__ = ["LAZY", "Ledger"]

#: Longest delay before bookkeeping that no spawn waits for (counts) is committed.
LAZY = 0.05


class Ledger:
    """Jobs, attempts, slots and the open transaction of one engine."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        #: The jobs in memory by rowid (active ones and those on their way out).
        self.jobs: dict[int, JobRun] = {}
        #: Running attempts by pid.
        self.attempts: dict[int, Attempt] = {}
        #: (deadline, pid) of attempts with a wall clock, a heap.
        self.timers: list[tuple[float, int]] = []
        #: Slots in use per node, and the nodes a job manager with runExclusive holds.
        self.used: dict[str, int] = {}
        self.exclusive: set[str] = set()
        #: Every node, the task slots of each, the state directory's own nodes (where the
        #: CLI's jobs run) and the nodes of each pool created through the service (by
        #: lower-cased pool id).
        self.nodes: list[str] = []
        self.node_slots: dict[str, int] = {}
        self.default_nodes: list[str] = []
        self.pool_nodes: dict[str, list[str]] = {}
        #: Task-count changes not yet written, per job rowid: active, running,
        #: succeeded, failed, completions.
        self.deltas: dict[int, list[int]] = {}
        #: When the oldest count change not yet written was made; whether it is due now
        #: (a job changed state or settled: whoever sees that must see the final counts).
        self.counts_since = 0.0
        self.counts_due = False
        #: The open write transaction, and when it began.
        self.in_tx = False
        self.tx_since = 0.0
        #: Called when a transaction begins (no other process can commit until it ends).
        self.on_begin: Callable[[], None] = lambda: None
        #: Something completed while launching: the loop goes round again at once.
        self.again = False

    def write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        """Execute a statement in the open transaction (begun on the first write).

        Reads on the engine's connection see it at once; other processes see it at the
        next `commit`, which always comes before any process is spawned.
        """
        conn = self.store.conn
        try:
            if not self.in_tx:
                begin_immediate(conn, self.root)
                self.in_tx = True
                self.tx_since = time.monotonic()
                self.on_begin()
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise state_error(exc, self.root) from None

    def count(
        self, job: JobRun, active: int = 0, running: int = 0, ok: int = 0, bad: int = 0
    ) -> None:
        """Stage a change of the job's task counts (written by `commit`, see there)."""
        delta = self.deltas.get(job.rowid)
        if delta is None:
            if not self.deltas:
                self.counts_since = time.monotonic()
            delta = self.deltas[job.rowid] = [0, 0, 0, 0, 0]
        delta[0] += active
        delta[1] += running
        delta[2] += ok
        delta[3] += bad
        delta[4] += ok + bad

    def commit(self, *, counts: bool = False) -> None:
        """Commit the open transaction, with the task count changes when they are due.

        The jobs' task counts are written with the first commit at least `LAZY` after
        they changed (one row fewer per commit while tasks come and go every
        millisecond), at once when `counts` or `counts_due`. A crash loses nothing: an
        engine recounts them from the task rows when it starts.
        """
        deltas = self.deltas
        if deltas and (counts or self.counts_due or time.monotonic() - self.counts_since >= LAZY):
            for rowid, d in deltas.items():
                self.write(
                    "UPDATE jobs SET n_active = n_active + ?, n_running = n_running + ?, "
                    "n_succeeded = n_succeeded + ?, n_failed = n_failed + ?, "
                    "n_done = n_done + ? WHERE rowid = ?",
                    (*d, rowid),
                )
            deltas.clear()
            self.counts_due = False
        if self.in_tx:
            try:
                self.store.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise state_error(exc, self.root) from None
            self.in_tx = False

    def free_slots(self) -> int:
        """Slots free on all nodes."""
        return sum(max(0, self.node_slots[n] - self.used[n]) for n in self.nodes)

    def nodes_of(self, job: JobRun) -> list[str]:
        """The nodes `job` may run on: its pool's, else (unless it needs its pool, as on
        Batch) the state directory's own."""
        nodes = self.pool_nodes.get(job.pool_id.lower())
        if nodes is not None:
            return nodes
        return [] if job.pool_required else self.default_nodes

    def attempt_of(self, job: JobRun, idx: int) -> tuple[int, Attempt] | None:
        """(pid, attempt) of the running attempt of task `idx` of `job`, if any."""
        for pid, attempt in self.attempts.items():
            if attempt.job is job and attempt.idx == idx and attempt.kind in ("task", "manager"):
                return pid, attempt
        return None
