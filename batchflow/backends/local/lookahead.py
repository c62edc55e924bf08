"""What starts next: the rows and directories of the tasks at the front of the ready queues.

After each launch the engine looks at the front of the ready queues, in the order
`schedule` will take them (job priority, then creation time; queue order within a job),
a few times the slot count deep. For those tasks it

- reads their rows (id, definition, previous node, retries) now, while the slots are busy,
  so starting one costs no query; the rows stay good as long as no other process has
  committed (`PRAGMA data_version`, checked when the engine's write transaction begins,
  during which no one else can commit), else they are read again;
- has their directories made by the `TaskDirs` helper (with one node only, where the
  node a task gets is known in advance).

When the ready queues are shorter than the window, it is filled with the next tasks that
still wait for dependencies, in task order: in a pipeline the next stage's directories
are then made while the current stage runs, not when each task becomes ready.

The window is refilled when half of it has started (or it was reset): the rows missing
are read with one query per job and the directories asked for with one write to the
helper, so a refill costs the loop little and wakes the helper up for a few tasks at once.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.jobrun import WAITING, JobRun

if TYPE_CHECKING:
    from batchflow.backends.local.ledger import Ledger
    from batchflow.backends.local.starting import Starter
    from batchflow.backends.local.taskdirs import TaskDirs

__all__ = ["LookAhead"]

_ROW = "SELECT id, def, node, retries FROM tasks WHERE job = ? AND seq = ?"
_ROWS = "SELECT seq, id, def, node, retries FROM tasks WHERE job = ? AND seq IN ({})"


class LookAhead:
    """The rows read ahead and the directories asked for, of the tasks that start next."""

    starter: Starter

    def __init__(self, ledger: Ledger, dirs: TaskDirs) -> None:
        self.ledger = ledger
        self.dirs = dirs
        #: (job rowid, index) -> (task directory or "", row), in scheduling order.
        self.rows: dict[tuple[int, int], tuple[str, Any]] = {}
        self.data_version = -1
        #: Whether the window was reset since the last refill.
        self.stale = True

    def row(self, job: JobRun, idx: int) -> Any:
        """(id, def, node, retries) of a waiting task: read ahead, or from the store."""
        known = self.rows.get((job.rowid, idx))
        if known is not None:
            return known[1]
        return self.ledger.store.one(_ROW, (job.rowid, job.seq(idx)))

    def started(self, job: JobRun, idx: int) -> None:
        """A task started: it leaves the window."""
        self.rows.pop((job.rowid, idx), None)

    def reset(self) -> None:
        """Forget everything read (jobs were reloaded, terminated or removed)."""
        self.rows = {}
        self.stale = True

    def check(self) -> None:
        """Forget the rows read if another process committed since the last check."""
        version = self.ledger.store.one("PRAGMA data_version")[0]
        if version != self.data_version:
            self.data_version = version
            self.reset()

    def refresh(self) -> None:
        """Refill the window if half of it started: read rows, ask for directories."""
        ledger = self.ledger
        limit = min(64, max(8, 4 * sum(ledger.node_slots.values())))
        if not self.stale and len(self.rows) > limit // 2:
            return
        jobs = [
            j for j in ledger.jobs.values() if j.state == "active" and (j.ready or j.cursor < j.n)
        ]
        if not jobs and not self.rows:
            return
        jobs.sort(key=lambda j: (-j.priority, j.creation_time))
        old: dict[tuple[int, int], tuple[str, Any] | None] = dict(self.rows)
        order: list[tuple[int, int]] = []
        for job in jobs:
            status, missing = job.status, []
            room = limit - len(order)
            picked = list(islice((i for i in job.ready if status[i] == WAITING), room))
            if len(picked) < room:
                picked += job.upcoming(room - len(picked))
            for idx in picked:
                key = (job.rowid, idx)
                if key not in old:
                    old[key] = None
                    missing.append(idx)
                order.append(key)
            if missing:
                self._read(job, missing, old)
            if len(order) >= limit:
                break
        self.rows = {key: known for key in order if (known := old[key]) is not None}
        self.stale = False
        self.dirs.want(path for path, _ in self.rows.values() if path)

    def _read(
        self,
        job: JobRun,
        indices: list[int],
        into: dict[tuple[int, int], tuple[str, Any] | None],
    ) -> None:
        """Read the rows of `indices` of `job` (one query) into `into`."""
        ledger = self.ledger
        nodes = ledger.nodes_of(job)
        node = nodes[0] if len(nodes) == 1 else None
        root = self.starter.job_root(job, node) if node else None
        sql = _ROWS.format(", ".join("?" * len(indices)))
        for seq, *row in ledger.store.query(sql, (job.rowid, *map(job.seq, indices))):
            into[(job.rowid, seq + 1)] = (root + row[0] if root else "", row)
