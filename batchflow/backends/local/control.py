"""One engine per state directory: the lock that guards it, waking it up, starting it.

- `engine.lock` is held with `flock` by the running engine (the kernel drops it when the
  process dies, however it dies), and holds the engine's pid for diagnostics.
- `engine.wake` is a FIFO the engine keeps open for reading; a CLI that filed a request in
  the store (new tasks, terminate, delete) writes one byte to it, so the engine reacts at
  once instead of polling. Writing never blocks: with no engine, opening fails (ENXIO).
- `ensure_engine` starts an engine when none holds the lock. The engine is a separate
  process in its own session, so a Ctrl-C or a closed terminal does not stop it or its tasks.

Race-free hand-over: a CLI commits its request before it looks at the lock; an engine that
finds nothing to do releases the lock and only then looks at the store once more, taking
the lock back if work arrived in between.

Starting early (`EarlyEngine`): an engine takes a Python start and its imports, about
0.15 s, before it can run anything. `submit` starts it before it writes the job (and the
CLI before it even loads the flow), so that time passes while the CLI works. The early
engine waits, without touching the state directory, on one end of a socket pair until the
CLI says "go" after its commit, then answers whether it took the lock ("L") or found
another engine running ("B", which the CLI then wakes). If the CLI exits without "go"
(the flow was invalid, Ctrl-C), the engine sees the socket close and exits.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from batchflow.backends.local.paths import StateDir

if TYPE_CHECKING:
    import subprocess

__all__ = ["EarlyEngine", "engine_pid", "ensure_engine", "poke", "stop_engine", "try_lock"]


def try_lock(path: Path) -> int | None:
    """An fd holding the exclusive lock on `path`, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def engine_pid(state: StateDir) -> int | None:
    """The pid of the engine running on this state dir, or None if none is running."""
    if not state.lock.exists():
        return None
    fd = try_lock(state.lock)
    if fd is not None:
        os.close(fd)
        return None
    with contextlib.suppress(OSError, ValueError):
        return int(state.lock.read_text().strip() or 0) or -1
    return -1


def stop_engine(state: StateDir) -> None:
    """Kill the engine of `state` and every task process it left (for throwaway state:
    test fixtures, an emulator that ends). Its tasks are requeued if an engine starts
    there again."""
    import signal
    import time

    from batchflow.backends.local.recovery import task_groups
    from batchflow.backends.local.runner import kill_group

    pid = engine_pid(state)
    if pid and pid > 0:
        # The engine leads its own session: its group is the engine and its task-directory
        # helper (which would otherwise tidy up `spare/` after it, at any moment).
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while engine_pid(state) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    for group in task_groups(state, None):
        kill_group(group)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting for a parent do not)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as source:
                fields = source.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            return True
    return False


def poke(state: StateDir) -> bool:
    """Wake the engine up; False if no engine is listening."""
    try:
        fd = os.open(state.wake, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, b"!")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups already
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


#: How long `EarlyEngine.go` waits for the engine's answer before starting one the usual way.
_ANSWER_TIMEOUT = 10.0


def engine_argv(state: StateDir, *extra: str) -> list[str]:
    """The command line of an engine process for `state` (see `engine_environment`).

    `-P` keeps the caller's working directory off the engine's `sys.path`: a user's
    `re.py` or `json.py` next to the flow would otherwise replace the standard library's
    module in the engine.
    """
    return [sys.executable, "-P", "-m", "batchflow.backends.local.engine", str(state.root), *extra]


def engine_environment() -> dict[str, str]:
    """The caller's environment with `PYTHONPATH` starting at the folder that holds this
    copy of batchflow, so the engine runs the caller's code (a source tree run with
    `python -m batchflow` too, which `-P` would otherwise leave unfound)."""
    from batchflow.backends.local.runner import PACKAGE_ROOT

    env = dict(os.environ)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + rest if rest else "")
    return env


class EarlyEngine:
    """An engine process started ahead of the job it will run (see the module docstring)."""

    def __init__(self, state: StateDir) -> None:
        import socket
        import subprocess

        self.state = state
        ours, theirs = socket.socketpair()
        self._sock: socket.socket | None = ours
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                engine_argv(state, "--hold", str(theirs.fileno())),
                env=engine_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except OSError:
            ours.close()
            self._sock = self._process = None
        finally:
            theirs.close()

    def go(self) -> None:
        """The job is committed: let the engine run it (or wake the one already running)."""
        sock, self._sock = self._sock, None
        answer = b""
        if sock is not None:
            with sock, contextlib.suppress(OSError):
                sock.sendall(b"g")
                sock.settimeout(_ANSWER_TIMEOUT)
                answer = sock.recv(1)
        self._reap()
        if answer != b"L":  # another engine had the lock, or ours could not start
            ensure_engine(self.state)

    def cancel(self) -> None:
        """Nothing was submitted: the engine exits without touching the state directory."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()  # an engine already forked off sees the socket close and exits
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.kill()  # a start still importing never forks
        self._reap()

    def _reap(self) -> None:
        # The first process only forks the engine off and exits.
        import subprocess

        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_ANSWER_TIMEOUT)


def ensure_engine(state: StateDir) -> None:
    """Wake the engine, or start one if none is running (it daemonizes itself)."""
    if poke(state) and engine_pid(state) is not None:
        return
    if engine_pid(state) is not None:
        poke(state)
        return
    import subprocess

    state.root.mkdir(parents=True, exist_ok=True)
    with open(state.log, "ab") as log:
        # The engine forks into the background and its first process exits at once.
        subprocess.run(
            engine_argv(state),
            env=engine_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            close_fds=True,
            start_new_session=True,
            check=False,
        )
