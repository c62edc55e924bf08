"""Starting tasks: choosing what runs where, recording the start, spawning the process.

`schedule` fills the free slots: jobs by priority (then age), tasks in their ready-queue
order, within `maxParallelTasks`, `requiredSlots` and the node of a previous attempt when
it has room; a job manager with `runExclusive` takes a node alone. Each start is written
to the engine's open transaction (or, when the node needs the job's preparation task
first, the task is `preparing` and waits for it). `launch` runs after that transaction
is committed, so no process exists whose start a crash could lose: it makes sure the task
directory exists (usually made ahead by `TaskDirs`), builds the environment and spawns.
A command that cannot be started completes its task at once (`CommandProgramNotFound`).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import json
import time
from typing import TYPE_CHECKING, Any

from batchflow.backends.local import outcome
from batchflow.backends.local.jobrun import GONE, RUNS, WAITING, JobRun
from batchflow.backends.local.launch import (
    FILE_FIELDS,
    Attempt,
    node_env,
    task_env,
    write_stage_spec,
)
from batchflow.backends.local.paths import NODE_SUBDIRS
from batchflow.backends.local.runner import resolve_program, spawn, split_command, stage_argv
from batchflow.backends.local.store import PREPARING, RUNNING
from batchflow.durations import parse_duration

if TYPE_CHECKING:
    from batchflow.backends.local.ledger import Ledger
    from batchflow.backends.local.lookahead import LookAhead
    from batchflow.backends.local.paths import StateDir
    from batchflow.backends.local.prepare import Preparations
    from batchflow.backends.local.taskdirs import TaskDirs
    from batchflow.backends.local.transitions import Transitions

__all__ = ["Starter"]

# Guarded by `state = 0`: a service may have deleted the task since it was read.
_START = (
    "UPDATE tasks SET prev = state, prev_time = state_time, state = ?, state_time = ?, "
    "modified = ?, start = ?, end = NULL, exit_code = NULL, result = NULL, failure = NULL, "
    "node = ? WHERE job = ? AND seq = ? AND state = 0"
)


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    seconds = parse_duration(value).total_seconds()
    return None if seconds > 1e14 else seconds


class Starter:
    """Fills free slots and spawns the attempts whose start was committed."""

    ahead: LookAhead
    prep: Preparations
    transitions: Transitions

    def __init__(
        self,
        ledger: Ledger,
        state: StateDir,
        dirs: TaskDirs,
        *,
        base_env: dict[str, str],
        account_url: str,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.dirs = dirs
        #: The environment of tasks whose job recorded none (made by an older release).
        self.base_env = base_env
        self.account_url = account_url
        #: Started tasks to spawn after the commit: (job, index, id, definition, node,
        #: slots, retries).
        self.to_launch: list[tuple[JobRun, int, str, dict[str, Any], str, int, int]] = []
        #: (job id, node) -> the job's directory on the node (made), with a trailing '/'.
        self.made: dict[tuple[str, str], str] = {}

    def pick_node(self, job: JobRun, need: int, prefer: str | None, whole: bool) -> str | None:
        """A node with `need` free slots (the previous one if it can), or None."""
        ledger = self.ledger
        best, best_free = None, -1
        slots = ledger.node_slots
        for node in ledger.nodes_of(job):
            limit = slots[node]
            if node in ledger.exclusive or self.prep.failed_on(job, node):
                continue
            used = ledger.used[node]
            free = limit - used
            if free < need or (whole and used):
                continue
            if node == prefer:
                return node
            if free > best_free:
                best, best_free = node, free
        return best

    def schedule(self) -> None:
        """Start ready tasks while slots are free: higher job priority first."""
        ledger = self.ledger
        jobs = [j for j in ledger.jobs.values() if j.can_start()]
        if not jobs:
            return
        jobs.sort(key=lambda j: (-j.priority, j.creation_time))
        if not ledger.in_tx:
            self.ahead.check()
        free = ledger.free_slots()
        for job in jobs:
            ready, status = job.ready, job.status
            while free > 0 and job.can_start():
                idx = ready[0]
                if status[idx] != WAITING or job.pending[idx]:
                    ready.popleft()
                    continue
                need = job.slots.get(idx, 1)
                manager = idx == 0
                row = self.ahead.row(job, idx)
                if row is None:  # deleted by a service meanwhile
                    ready.popleft()
                    status[idx] = GONE
                    job.unfinished -= 1
                    continue
                definition = json.loads(row[1])
                whole = manager and definition.get("runExclusive", True)
                node = self.pick_node(job, need, row[2], whole)
                if node is None:
                    break
                ready.popleft()
                if not self.start(job, idx, row[0], definition, node, need, row[3]):
                    continue
                if whole:
                    ledger.exclusive.add(node)
                free -= need

    def start(
        self,
        job: JobRun,
        idx: int,
        task_id: str,
        definition: dict[str, Any],
        node: str,
        need: int,
        retries: int,
    ) -> bool:
        """Take the slots and record the start (or the wait for job preparation); False
        if the task is no longer there to start."""
        ledger = self.ledger
        self.ahead.started(job, idx)
        now = time.time()
        preparing = self.prep.needed(job, node)
        started = ledger.write(
            _START,
            (
                PREPARING if preparing else RUNNING,
                now,
                now,
                None if preparing else now,
                node,
                job.rowid,
                job.seq(idx),
            ),
        )
        if started.rowcount == 0:  # a service deleted it: the request will follow
            job.status[idx] = GONE
            job.unfinished -= 1
            return False
        job.status[idx] = RUNS
        job.running += 1
        ledger.used[node] += need
        ledger.count(job, active=-1, running=1)
        if preparing:
            self.prep.wait(job, node, (idx, task_id, definition, need, retries))
            return True
        self.to_launch.append((job, idx, task_id, definition, node, need, retries))
        self.dirs.urgent(self.job_root(job, node) + task_id)
        return True

    def job_root(self, job: JobRun, node: str) -> str:
        """The job's directory on `node`, made on first use, with a trailing '/'."""
        root = self.made.get((job.id, node))
        if root is None:
            state = self.state
            top = state.node_root(node)
            for sub in NODE_SUBDIRS:
                (top / sub).mkdir(parents=True, exist_ok=True)
            folder = state.job_dir(node, job.id)
            folder.mkdir(parents=True, exist_ok=True)
            root = self.made[(job.id, node)] = str(folder) + "/"
        return root

    def forget(self, job: JobRun) -> None:
        """The job is being removed: its directories are no longer made or known."""
        made = self.made
        self.dirs.forget(v for k, v in made.items() if k[0] == job.id)
        self.made = {k: v for k, v in made.items() if k[0] != job.id}

    def launch(self) -> None:
        """Spawn the attempts whose start was just committed."""
        batch, self.to_launch = self.to_launch, []
        for job, idx, task_id, definition, node, need, retries in batch:
            kind = "manager" if idx == 0 else "task"
            constraints = definition.get("constraints") or {}
            max_retries = constraints.get("maxTaskRetryCount", job.max_retries)
            attempt = Attempt(
                job,
                idx,
                task_id,
                node,
                need,
                0,
                time.time(),
                definition.get("exitConditions"),
                max_retries,
                retries,
                constraints.get("maxWallClockTime"),
                kind=kind,
            )
            retention = _seconds(constraints.get("retentionTime"))
            if retention is not None:
                attempt.retention = retention
            self.spawn_attempt(attempt, definition)
        self.prep.launch_queued()

    def spawn_attempt(self, attempt: Attempt, definition: dict[str, Any]) -> None:
        """Start the process of an attempt; a launch failure completes it at once."""
        ledger, job = self.ledger, attempt.job
        state = self.state
        task_dir = self.job_root(job, attempt.node) + attempt.task_id
        self.dirs.ensure(task_dir)
        wd = task_dir + "/wd"
        before, common = node_env(self.base_env, state, job, attempt.node, self.account_url)
        env = task_env(
            before, common, attempt.task_id, task_dir, definition.get("environmentSettings")
        )
        try:
            if any(key in definition for key in FILE_FIELDS):
                name = f"{job.rowid}-{attempt.kind}-{attempt.idx}-{attempt.node}"
                attempt.spec_path = write_stage_spec(
                    state,
                    name,
                    definition,
                    base_dir=job.base_dir,
                    results_dir=state.results(job.id, attempt.task_id),
                    job_id=job.id,
                )
                argv = stage_argv(attempt.spec_path)
                program = argv[0]
            else:
                argv = split_command(definition["commandLine"])
                found = resolve_program(argv[0], env["PATH"], wd) if argv else None
                if found is None:
                    raise FileNotFoundError(errno.ENOENT, "No such file or directory")
                program = found
            pid = spawn(program, argv, env, wd, task_dir)
        except (OSError, ValueError, IndexError) as exc:
            name = (definition["commandLine"].split() or [""])[0]
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            with contextlib.suppress(OSError), open(task_dir + "/stderr.txt", "w") as err:
                err.write(f"batchflow: cannot run '{name}': {why}\n")
            failure = outcome.Outcome(None, outcome.launch_failure(name, why))
            self.transitions.settle(attempt, None, failure)
            ledger.again = True
            return
        attempt.pid = pid
        ledger.attempts[pid] = attempt
        seconds = _seconds(attempt.wall_clock)
        if seconds is not None:
            heapq.heappush(ledger.timers, (attempt.start + seconds, pid))
