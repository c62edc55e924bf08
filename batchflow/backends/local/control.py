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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

from batchflow.backends.local.paths import StateDir

__all__ = ["engine_pid", "ensure_engine", "poke", "try_lock"]


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


def ensure_engine(state: StateDir) -> None:
    """Wake the engine, or start one if none is running (it daemonizes itself)."""
    if poke(state) and engine_pid(state) is not None:
        return
    if engine_pid(state) is not None:
        poke(state)
        return
    state.root.mkdir(parents=True, exist_ok=True)
    with open(state.log, "ab") as log:
        # The engine forks into the background and its first process exits at once.
        subprocess.run(
            [sys.executable, "-m", "batchflow.backends.local.engine", str(state.root)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            close_fds=True,
            start_new_session=True,
            check=False,
        )
