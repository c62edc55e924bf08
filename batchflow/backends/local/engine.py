"""The local engine: one process per state directory that runs every job's tasks.

`python -m batchflow.backends.local.engine STATE_DIR` forks into the background, takes the
state directory's lock (or exits if another engine has it), requeues what a dead
predecessor left running, and loops:

1. reap the children that exited (`waitpid(-1, WNOHANG)`) and settle their attempts:
   retry, or complete with Batch's result, failureInfo and exit options, releasing
   dependents in memory;
2. kill what passed its wall clock; on a wake-up, read the jobs table for new tasks,
   terminate and delete requests;
3. fill the free slots (job priority, maxParallelTasks, requiredSlots, nodes), staging
   each start in the same transaction as the completions that made it possible;
4. COMMIT once, then spawn the started tasks, and block in `select` on the SIGCHLD
   wake-up pipe and the `engine.wake` FIFO until a child exits, a CLI pokes, or the next
   deadline comes. There is no polling sleep anywhere.

Because a start is committed before its process is spawned and an end is committed with
its effects, a `kill -9` of the engine loses nothing that was reported: on restart the
tasks it had running are requeued (requeueCount + 1) and everything completed stays so.
When no job has anything left to run, the engine exits (see `control` for the hand-over).

This module holds the loop and reaping; `ledger` the bookkeeping every part shares (jobs,
attempts, slots, the open transaction), `starting` fills slots and spawns, `transitions`
records ends and job state changes, `requests` carries out what services asked,
`lookahead` reads the next tasks' rows and `taskdirs` makes their directories ahead,
off the loop.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import selectors
import signal
import sys
import time
from pathlib import Path
from typing import Any

from batchflow.backends.local import control, outcome
from batchflow.backends.local.jobrun import JobRun
from batchflow.backends.local.launch import Attempt, base_environment
from batchflow.backends.local.ledger import LAZY, Ledger
from batchflow.backends.local.lookahead import LookAhead
from batchflow.backends.local.paths import StateDir, node_name, pool_node_names
from batchflow.backends.local.prepare import Preparations
from batchflow.backends.local.recovery import recover
from batchflow.backends.local.requests import Requests
from batchflow.backends.local.runner import exit_code_of, kill_group
from batchflow.backends.local.starting import Starter
from batchflow.backends.local.store import Store
from batchflow.backends.local.taskdirs import TaskDirs
from batchflow.backends.local.transitions import Transitions
from batchflow.exceptions import StateError

__all__ = ["Engine", "main"]

#: How long an engine with nothing to do waits for more work before it exits.
LINGER = 0.5


class Engine:
    """The scheduler loop of one state directory."""

    def __init__(self, state: StateDir, lock_fd: int) -> None:
        self.state = state
        self.lock_fd: int | None = lock_fd
        self.store = Store(state.root)
        self.ledger = ledger = Ledger(self.store, state.root)
        self.woken = True
        self.dirs = TaskDirs(spares=str(state.root / "spare"))
        self.ahead = LookAhead(ledger, self.dirs)
        self.prep = Preparations(ledger)
        self.starter = Starter(
            ledger,
            state,
            self.dirs,
            # Tasks of a job created before jobs recorded their creator's environment.
            base_env=base_environment(),
            account_url=os.environ.get("BATCHFLOW_ACCOUNT_URL", "http://127.0.0.1/"),
        )
        self.transitions = Transitions(ledger, state)
        self.requests = Requests(ledger, state)
        # The parts know each other explicitly; what they share is the ledger.
        self.ahead.starter = self.starter
        self.prep.starter, self.prep.transitions = self.starter, self.transitions
        self.starter.ahead, self.starter.prep = self.ahead, self.prep
        self.starter.transitions = self.transitions
        self.transitions.ahead, self.transitions.prep = self.ahead, self.prep
        self.transitions.starter = self.starter
        self.requests.ahead, self.requests.prep = self.ahead, self.prep
        self.requests.transitions = self.transitions
        # No other process can commit while the engine's transaction is open: rows read
        # ahead are checked when it begins.
        ledger.on_begin = self.ahead.check

    def pool(self) -> None:
        """Read the nodes: the state directory's own (the slots and nodes `submit`
        stored) and those of the pools services created; carry out pool resizes and
        deletes (the tasks of nodes that go away are requeued, as Batch does)."""
        ledger = self.ledger
        # The emulator serving this state directory now (it may have restarted on
        # another port while this engine ran): what tasks see as AZ_BATCH_ACCOUNT_URL.
        url = self.store.get_meta("account_url")
        if url and url != self.starter.account_url:
            self.starter.account_url = url
            for job in ledger.jobs.values():
                job.env_cache = {}
        slots = self.store.get_meta("slots")
        count = self.store.get_meta("nodes")
        per_node = int(slots) if slots else os.cpu_count() or 1
        ledger.default_nodes = [node_name(i) for i in range(int(count) if count else 1)]
        node_slots = dict.fromkeys(ledger.default_nodes, per_node)
        pools: dict[str, list[str]] = {}
        for rowid, pool_id, state, allocation, target, pool_slots in self.store.query(
            "SELECT rowid, id, state, allocation_state, target, slots FROM pools"
        ):
            if state == "deleting":
                self.ledger.write("DELETE FROM pools WHERE rowid = ?", (rowid,))
                continue
            if allocation != "steady":
                now = time.time()
                self.ledger.write(
                    "UPDATE pools SET allocation_state = 'steady', allocation_time = ?, "
                    "modified = ? WHERE rowid = ?",
                    (now, now, rowid),
                )
            names = pool_node_names(pool_id, target)
            pools[pool_id.lower()] = names
            node_slots.update(dict.fromkeys(names, pool_slots))
        gone = set(ledger.nodes) - set(node_slots)
        ledger.node_slots = node_slots
        ledger.pool_nodes = pools
        ledger.nodes = list(node_slots)
        for node in ledger.nodes:
            ledger.used.setdefault(node, 0)
        if gone:
            for pid, attempt in ledger.attempts.items():
                if attempt.node in gone and attempt.kill_reason is None:
                    attempt.kill_reason = "requeue"
                    kill_group(pid)

    # -- reading the store -----------------------------------------------------------

    def scan(self) -> None:
        """Pick up new jobs, added tasks and the requests services filed, in order."""
        self.pool()
        rows = self.store.query(
            "SELECT rowid, id, spec, state, creation_time, settled, n_done, base_dir, env, "
            "pool_required, nseq FROM jobs"
        )
        requests = self.store.query("SELECT id, job, seq, op, arg FROM requests ORDER BY id")
        asked = {r[1] for r in requests}
        for rowid, job_id, spec, state, creation, settled, done, base, env, needs, nseq in rows:
            job = self.ledger.jobs.get(rowid)
            if job is None:
                if state == "completed" and rowid not in asked:
                    continue
                job = JobRun(
                    rowid, (job_id, spec, state, creation, settled, done, base, env, needs)
                )
                job.load(self.store)
                self.prep.load(job)
                self.ledger.jobs[rowid] = job
                self.ahead.reset()
                if rowid not in asked:
                    self.resume(job)
            else:
                job.settled = settled  # a service resets it when it changes the job
                if nseq > job.n - 1:
                    job.load(self.store)  # only the tasks added since the last scan
                    self.ahead.reset()
        for request in requests:
            self.ledger.write("DELETE FROM requests WHERE id = ?", (request[0],))
            job = self.ledger.jobs.get(request[1])
            if job is not None:
                self.requests.apply(job, *request[2:])
        known = {row[0] for row in rows}
        for rowid in [r for r in self.ledger.jobs if r not in known]:
            del self.ledger.jobs[rowid]
        self.clean_expired()

    def resume(self, job: JobRun) -> None:
        """Carry on with a job found in the store with no request pending: one a dead
        engine left half-way through a transition finishes it (release tasks not yet run
        run; a disable still requeues), any other gets its job-level checks."""
        transitions = self.transitions
        if job.state == "terminating":
            transitions.terminate(job, None)
        elif job.state == "deleting":
            transitions.delete(job)
        elif job.state == "disabling":
            transitions.disable(job, "requeue", recorded=True)
        elif job.state == "enabling":
            transitions.enable(job)
        else:
            transitions.after_change(job)

    def clean_expired(self) -> None:
        """Remove the directories of tasks completed longer ago than their retentionTime."""
        rows = self.store.query(
            "SELECT t.job, t.seq, j.id, t.id, t.node FROM tasks t JOIN jobs j ON j.rowid = t.job "
            "WHERE t.expires <= ? LIMIT 1000",
            (time.time(),),
        )
        if not rows:
            return
        folders = []
        for rowid, seq, job_id, task_id, node in rows:
            self.ledger.write(
                "UPDATE tasks SET expires = NULL, cleaned = 1 WHERE job = ? AND seq = ?",
                (rowid, seq),
            )
            if node:
                folders.append(self.state.task_dir(node, job_id, task_id))
        self.ledger.commit()  # readers learn why the files are gone before they go
        self.transitions.discard(folders)

    # -- finishing -------------------------------------------------------------------

    def reap(self) -> bool:
        """Settle every child that exited; whether any did."""
        any_reaped = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            attempt = self.ledger.attempts.pop(pid, None)
            if attempt is not None:
                any_reaped = True
                self.finished(attempt, exit_code_of(status))
        return any_reaped

    def finished(self, attempt: Attempt, code: int) -> None:
        """Turn an exited process into an outcome (reading the wrapper's report)."""
        report: dict[str, Any] | None = None
        if attempt.spec_path is not None:
            result_path = attempt.spec_path.with_suffix(".result")
            with contextlib.suppress(OSError, ValueError):
                report = json.loads(result_path.read_text())
            for path in (attempt.spec_path, result_path):
                with contextlib.suppress(OSError):
                    path.unlink()
        reason = attempt.kill_reason
        if reason == "timeout":
            result = outcome.Outcome(code, outcome.timed_out(attempt.wall_clock or ""))
        elif reason in ("terminate", "delete"):
            result = outcome.Outcome(None, outcome.task_ended())
        elif reason == "delete-task":
            self.transitions.settle(attempt, "requeue", None)
            self.requests.forget(attempt.job, attempt.idx, attempt.task_id)
            return
        elif reason == "requeue":
            self.transitions.settle(attempt, "requeue", None)
            return
        elif report is None and attempt.spec_path is not None:
            crash: dict[str, Any] = {
                "category": "servererror",
                "code": "TaskEnded",
                "message": f"the staging wrapper ended unexpectedly (exit code {code})",
            }
            result = outcome.Outcome(code, crash)
        elif report is not None and report.get("phase") == "preprocessing":
            result = outcome.Outcome(None, report.get("failure"), pre_processing=True)
        elif report is not None and report.get("phase") == "launch":
            result = outcome.Outcome(None, report.get("failure"))
        else:
            if report is not None:
                code = report.get("exitCode", code)
            failure = report.get("failure") if report else None
            if failure is not None:
                result = outcome.Outcome(code, failure, upload=True)
            elif code != 0 and outcome.retries_left(code, attempt.retries, attempt.max_retries):
                self.transitions.settle(attempt, "retry", None)
                return
            else:
                result = outcome.Outcome(
                    code, None if code == 0 else outcome.failure_exit_code(code)
                )
        self.transitions.settle(attempt, None, result)

    # -- timers and idleness ---------------------------------------------------------

    def expire(self, now: float) -> float | None:
        """Kill attempts past their wall clock, end jobs past theirs; next deadline."""
        timers = self.ledger.timers
        while timers and timers[0][0] <= now:
            _, pid = heapq.heappop(timers)
            attempt = self.ledger.attempts.get(pid)
            if attempt is not None and attempt.kill_reason is None:
                attempt.kill_reason = "timeout"
                kill_group(pid)
        nearest = timers[0][0] if timers else None
        for job in list(self.ledger.jobs.values()):
            if job.deadline is None or job.state not in ("active", "disabled"):
                continue
            if job.deadline <= now:
                self.transitions.terminate(job, "MaxWallClockTimeExpiry")
            elif nearest is None or job.deadline < nearest:
                nearest = job.deadline
        return nearest

    def busy(self) -> bool:
        """Whether anything runs or could start (else the engine may exit)."""
        if self.ledger.attempts or self.starter.to_launch:
            return True
        for job in self.ledger.jobs.values():
            if job.state in ("terminating", "deleting"):
                return True
            if job.state in ("active", "disabling") and job.running:
                return True
            nodes = self.ledger.nodes_of(job)
            if job.can_start() and any(not self.prep.failed_on(job, n) for n in nodes):
                return True
        return False

    def mark_settled(self) -> None:
        """Tell CLIs which jobs cannot progress any more (nothing running or startable)."""
        for job in self.ledger.jobs.values():
            if job.state not in ("active", "disabled"):
                continue
            stuck = job.running == 0 and (
                not job.can_start()
                or all(self.prep.failed_on(job, n) for n in self.ledger.nodes_of(job))
            )
            if int(stuck) != job.settled:
                # Only if no task was added since the engine looked (a service resets the
                # flag when it adds; this write must not undo that).
                written = self.ledger.write(
                    "UPDATE jobs SET settled = ? WHERE rowid = ? AND nseq <= ?",
                    (int(stuck), job.rowid, job.n - 1),
                )
                if written.rowcount:
                    job.settled = int(stuck)
                    self.ledger.counts_due = True  # whoever sees it settled sees final counts

    def leave(self) -> bool:
        """Give up the lock; True if the engine may exit (no work arrived meanwhile)."""
        assert self.lock_fd is not None
        os.close(self.lock_fd)
        self.lock_fd = None
        pending = self.store.one(
            "SELECT (SELECT count(*) FROM requests) + (SELECT count(*) FROM jobs WHERE state IN "
            "('terminating', 'deleting', 'disabling', 'enabling') "
            "OR (state = 'active' AND settled = 0))"
        )
        if not pending or not pending[0]:
            return True
        fd = control.try_lock(self.state.lock)
        if fd is None:
            return True
        self.lock_fd = fd
        _write_pid(fd)
        self.woken = True
        return False

    # -- the loop --------------------------------------------------------------------

    def run(self) -> None:
        """Recover, then loop until there is nothing left to do."""
        selector = selectors.DefaultSelector()
        child_r, child_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(child_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        if not self.state.wake.exists():
            os.mkfifo(self.state.wake, 0o600)
        wake = os.open(self.state.wake, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        selector.register(child_r, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        recover(self.store, self.state)
        self.clean_expired()
        self.ledger.commit()
        try:
            self.loop(selector, wake)
        finally:
            self.dirs.close()

    def loop(self, selector: selectors.BaseSelector, wake: int) -> None:
        """Reap, schedule, commit, launch, wait; until nothing is left to do."""
        lingered = False
        while True:
            self.reap()
            self.expire(time.time())
            if self.woken:
                self.woken = False
                self.ledger.commit()
                self.scan()
            self.starter.schedule()
            self.ledger.commit()
            self.ledger.again = False
            self.starter.launch()
            self.ahead.refresh()
            if self.reap() or self.ledger.again:
                continue
            self.mark_settled()
            # What is left (settled flags, counts) is not needed before a spawn: batch it
            # with the next completions, at most LAZY later (at once if all is quiet).
            idle = not self.busy()
            if idle or time.monotonic() - self.ledger.tx_since >= LAZY:
                self.ledger.commit(counts=idle)
            if idle:
                # Linger a moment: a client adding work call after call (the emulator,
                # users' code) keeps one engine instead of starting one per call.
                if not lingered:
                    lingered = True
                    if self.wait(selector, wake, LINGER):
                        # Work came (or a poke that left nothing to run, e.g. tasks of a
                        # job whose pool does not exist yet): linger afresh after it.
                        lingered = False
                        continue
                if self.leave():
                    return
                continue
            lingered = False
            nearest = self.expire(time.time())
            timeout = None if nearest is None else max(0.0, nearest - time.time())
            if self.ledger.in_tx or self.ledger.deltas:
                if not self.ledger.in_tx:
                    self.ledger.tx_since = time.monotonic()
                lazy = max(0.0, self.ledger.tx_since + LAZY - time.monotonic())
                timeout = lazy if timeout is None else min(timeout, lazy)
            self.wait(selector, wake, timeout)

    def wait(self, selector: selectors.BaseSelector, wake: int, timeout: float | None) -> bool:
        """Block until a child exits, a client pokes, or `timeout`; whether anything came."""
        events = selector.select(timeout)
        for key, _ in events:
            with contextlib.suppress(BlockingIOError):
                while os.read(key.fd, 512):
                    pass
            if key.fd == wake:
                self.woken = True
        return bool(events)


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def main(argv: list[str] | None = None) -> int:
    """`python -m batchflow.backends.local.engine STATE_DIR`: daemonize and run.

    `--foreground` runs in this process; `--hold FD` (see `control.EarlyEngine`) waits
    for "go" on the socket FD before it touches the state directory, and answers "L" when
    it took the lock, "B" when another engine has it, "X" when it cannot log to the state
    directory (the CLI then starts an engine the usual way, which reports why).
    """
    args = sys.argv[1:] if argv is None else argv
    root = Path(os.path.abspath(args[0]))
    foreground = "--foreground" in args
    hold = int(args[args.index("--hold") + 1]) if "--hold" in args else None
    if not foreground and os.fork() > 0:
        os._exit(0)
    state = StateDir(root)
    if hold is not None and not _held(hold, state):
        return 0
    fd = control.try_lock(state.lock)
    if fd is not None:
        _write_pid(fd)
    if hold is not None:
        _answer(hold, b"B" if fd is None else b"L")
    if fd is None:
        return 0
    try:
        Engine(state, fd).run()
    except StateError as exc:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} engine stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def _held(sock: int, state: StateDir) -> bool:
    """Wait for the CLI's "go"; then log to the state directory's engine log."""
    try:
        go = os.read(sock, 1)
    except OSError:
        go = b""
    if go != b"g":
        os.close(sock)
        return False
    try:
        log = os.open(state.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        _answer(sock, b"X")
        print(f"engine: cannot open {state.log}: {exc.strerror}", file=sys.stderr)
        return False
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return True


def _answer(sock: int, answer: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(sock, answer)
    with contextlib.suppress(OSError):
        os.close(sock)


if __name__ == "__main__":
    sys.exit(main())
