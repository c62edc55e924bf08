"""Task directories, made ahead of the scheduler by a helper process.

A task needs four new inodes before it runs: its directory, `wd/`, `stdout.txt` and
`stderr.txt`. Creating an inode can cost real kernel CPU time: ext4 without a journal (as
on these VMs) skips, on every allocation, each free inode of the block group that was
freed in the last minute (six while its inode table block is dirty), so after a large
tree was deleted an inode costs about 1 ms per 8,000 inodes deleted (0.05-0.2 ms
otherwise). The scheduler loop is single-threaded, and `posix_spawn` waits while the
child opens its files, so every such inode left the slots idle.

`TaskDirs` moves that work off the loop. After each launch the engine names the tasks that
start next (a bounded window in scheduling order) and a helper process creates their
directories and empty log files meanwhile. A process, not a thread: `os.posix_spawn`
holds the GIL until the child has exec'ed, so a thread would wait for the GIL after every
one of its syscalls and fall behind.

The helper's work is advisory, never a change of what a task sees:

- the engine still makes sure of the task directory and `wd` at launch (`ensure`: one
  `stat` when they exist) and the task's process still opens `stdout.txt`/`stderr.txt` with
  O_CREAT|O_TRUNC, so a prepared task starts exactly like an unprepared one, and every
  attempt (a retry, a requeue, a replaced task) starts with empty logs at the moment it
  is spawned; the helper only ever creates what is missing (O_CREAT without O_TRUNC) and
  closes each file at once, so no file descriptor outlives the syscall;
- if the helper is behind, the engine and the task make what is still missing themselves,
  racing harmlessly with it; if it died, nothing is lost but the head start;
- a task prepared that never runs (its job terminated, the engine killed) leaves an empty
  directory with empty logs, which a later attempt reuses and truncates;
- `forget` drops a job's requests and waits until the helper has finished the path in
  progress, before the job's directories are moved away to be deleted; the helper never
  creates parent directories, so a tree that was moved away stays away.

The same scan is why the helper does not make a task directory where it belongs, but
complete (directory, `wd`, logs) in a bucket directory under the state directory's
`spare/`, and renames it into place (`Spares`); a rename moves no inode. `spare/` has
the 'T' attribute of ext2/3/4 (`chattr +T`, FS_TOPDIR_FL), so the Orlov allocator puts
each bucket, and the inodes of the task directories made in it, in a block group with
many free inodes and few directories, starting its search at a hash of the bucket's name.
Bucket names are random: a fixed name would lead every run to the group the previous
run's tree was just deleted from. When a bucket turns out slow anyway (the median CPU time
of its last `SAMPLES` directories above `SLOW`), the helper moves on to a new bucket.
On these VMs a task directory then costs about 0.13 ms of CPU whatever the disk's recent
history; made in place it cost 0.13 ms on a quiet disk but 0.9-1.6 ms after a tree was
deleted, and with the job directory itself marked 'T' (the earlier way: every task
directory a scan of every block group) 0.3 ms. On filesystems without the attribute
(tmpfs, xfs, btrfs) directories are made in place, where they are cheap.

A rename replaces at most an empty directory, so a task directory that exists (a retry's,
or one the engine made meanwhile) is kept. When it replaces the empty directory the engine
has just made, the engine's `mkdir` of `wd` in it fails (ENOENT) and `ensure` looks again
and finds the moved directory complete.

Protocol: NUL-terminated messages on a pipe, `P<path>` (prepare) and `F<prefix>` (forget;
answered with one byte on a second pipe). The helper reads everything available before
each path, so a `forget` overtakes the requests queued before it.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Iterable

__all__ = ["BUCKET", "SAMPLES", "Spares", "TaskDirs", "make_task_dir", "prepare", "spread"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
_LOGS = ("/stdout.txt", "/stderr.txt")
# linux/fs.h: FS_IOC_GETFLAGS = _IOR('f', 1, long), FS_IOC_SETFLAGS = _IOW('f', 2, long)
# (the kernel reads and writes an int through them); FS_TOPDIR_FL is chattr's 'T'.
_LONG = struct.calcsize("l")
FS_IOC_GETFLAGS = (2 << 30) | (_LONG << 16) | (ord("f") << 8) | 1
FS_IOC_SETFLAGS = (1 << 30) | (_LONG << 16) | (ord("f") << 8) | 2
FS_TOPDIR_FL = 0x00020000
#: CPU seconds per task directory (4 inodes) above which a bucket is left for a new one.
SLOW = 0.0004
#: Task directories per measurement of a bucket (the median decides).
SAMPLES = 8
#: Task directories made in one bucket at most.
BUCKET = 512


def spread(path: str) -> bool:
    """Give a directory ext2/3/4's 'T' attribute: its subdirectories are spread out.

    Whether the directory has the attribute now; False where the filesystem (or the
    platform) does not have it, which changes nothing else.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & FS_TOPDIR_FL:
            flags[0] |= FS_TOPDIR_FL
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def make_task_dir(path: str) -> None:
    """Create a task directory and its `wd` if missing (the parent must exist)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path + "/wd")


def prepare(path: str) -> bool:
    """Directory, wd and (empty, if new) logs of one task; False if anything failed."""
    try:
        make_task_dir(path)
        for name in _LOGS:
            os.close(os.open(path + name, _CREATE, 0o644))
    except OSError:
        return False
    return True


class Spares:
    """Task directories made in buckets of `root` and renamed into place (see above)."""

    def __init__(self, root: str | None, slow: float = SLOW) -> None:
        self.root = root
        self.slow = slow
        self.bucket: str | None = None
        self.made = 0
        #: CPU seconds of the task directories made in the current bucket, lately.
        self.times: list[float] = []
        #: Spare directories made and not placed (their target was there already).
        self.unused: list[str] = []
        if root is not None:
            import shutil  # here, in the helper: the engine's start-up does not need it

            with contextlib.suppress(OSError):
                shutil.rmtree(root)  # what a helper that was killed left
            try:
                os.mkdir(root, 0o755)
            except OSError:
                self.root = None
            else:
                if not spread(root):
                    self.root = None  # not ext2/3/4: making directories in place is cheap

    def place(self, path: str) -> bool:
        """Make the task directory `path` (what it lacks, if it exists); False on failure."""
        if self.root is None or os.path.lexists(path):
            return prepare(path)
        spare = self.unused.pop() if self.unused else self._make()
        if spare is None:
            return prepare(path)
        try:
            os.rename(spare, path)
        except OSError as exc:
            self.unused.append(spare)
            if exc.errno == errno.EXDEV:
                self.root = None
            # the parent is gone (and never made again), or the engine made `path`
            return prepare(path) if os.path.lexists(path) else False
        return True

    def _make(self) -> str | None:
        """A new complete task directory in the current bucket (a new bucket if due)."""
        assert self.root is not None
        if self.bucket is None or self.made >= BUCKET or self._slow():
            self._next_bucket()
        if self.bucket is None:
            return None
        self.made += 1
        spare = f"{self.bucket}/{self.made}"
        started = time.process_time()  # CPU time: what the allocation costs, not waits
        if not prepare(spare):
            return None
        self.times.append(time.process_time() - started)
        return spare

    def _slow(self) -> bool:
        if len(self.times) < SAMPLES:
            return False
        times, self.times = sorted(self.times), []
        return times[len(times) // 2] > self.slow

    def _next_bucket(self) -> None:
        assert self.root is not None
        if self.bucket is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.bucket)  # empty, unless spares are left unused in it
        # A random name: Orlov's search starts at a hash of it.
        self.bucket = f"{self.root}/{os.urandom(6).hex()}"
        self.made = 0
        self.times = []
        try:
            os.mkdir(self.bucket)
        except OSError:
            self.bucket = None

    def close(self) -> None:
        """Remove what was made and not used."""
        if self.root is not None:
            import shutil

            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)


class TaskDirs:
    """The engine's side of the helper process that makes task directories ahead."""

    def __init__(self, spares: str | None = None, slow: float = SLOW) -> None:
        #: Where the helper makes task directories before moving them into place.
        self.spares = spares
        self.slow = slow
        self.pid: int | None = None
        self._requests: int | None = None
        self._acks: int | None = None
        self._failed = False
        #: Paths of the last window (already sent).
        self._window: set[str] = set()

    def want(self, paths: Iterable[str]) -> None:
        """The tasks expected to start next, in order: have the new ones prepared."""
        window: set[str] = set()
        new: list[str] = []
        for path in paths:
            window.add(path)
            if path not in self._window:
                new.append(path)
        self._window = window
        if new:
            window.difference_update(self._request(new))

    def urgent(self, path: str) -> None:
        """A task that starts now: have it prepared if it was not asked for already."""
        if path not in self._window and not self._request([path]):
            self._window.add(path)

    def ensure(self, path: str) -> None:
        """Make sure the task's directory and wd exist (OSError if they cannot be made)."""
        self._window.discard(path)
        for _ in range(3):
            try:
                os.stat(path + "/wd")
                return
            except OSError:
                pass
            try:
                make_task_dir(path)
                return
            except FileNotFoundError:
                continue  # the helper moved a complete directory over the one just made
        make_task_dir(path)

    def forget(self, prefixes: Iterable[str]) -> None:
        """Drop every request under `prefixes` (a job's directories) and wait for the
        path in progress: nothing is created under them once this returns."""
        heads = [p.rstrip("/") + "/" for p in prefixes]
        self._window = {p for p in self._window if not p.startswith(tuple(heads))}
        if self._requests is None or not heads:
            return
        for head in heads:
            if not self._send(b"F" + os.fsencode(head) + b"\0", wait=True):
                return  # the helper is gone: nothing is made there any more
            assert self._acks is not None
            with contextlib.suppress(OSError):
                if not os.read(self._acks, 1):
                    return

    def close(self) -> None:
        """Stop the helper (after the path in progress) and reap it."""
        self._window.clear()
        for fd in (self._requests, self._acks):
            if fd is not None:
                os.close(fd)
        self._requests = self._acks = None
        if self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None

    def _request(self, paths: list[str]) -> list[str]:
        """Ask for `paths` in few writes (each a wake-up of the helper); those not sent."""
        batch: list[bytes] = []
        size = 0
        for pos, path in enumerate(paths):
            message = b"P" + os.fsencode(path) + b"\0"
            if size + len(message) > select.PIPE_BUF and batch:
                if not self._send(b"".join(batch)):
                    return paths[pos - len(batch) :]
                batch, size = [], 0
            batch.append(message)
            size += len(message)
        if batch and not self._send(b"".join(batch)):
            return paths[len(paths) - len(batch) :]
        return []

    def _send(self, message: bytes, *, wait: bool = False) -> bool:
        """Pass one message to the helper (started on first use); False if it was not.

        A message up to PIPE_BUF bytes is written whole or not at all. A request is
        dropped when the pipe is full (the helper is far behind: the engine does the work
        itself); a `forget` (`wait`) waits for room.
        """
        if len(message) > select.PIPE_BUF or self._failed:
            return False
        if self._requests is None and not self._start():
            return False
        fd = self._requests
        assert fd is not None
        try:
            if wait:
                os.set_blocking(fd, True)
            os.write(fd, message)
        except BlockingIOError:
            return False
        except OSError:
            self._failed = True  # the helper died: carry on without it
            return False
        finally:
            if wait:
                os.set_blocking(fd, False)
        return True

    def _start(self) -> bool:
        """Fork the helper. Its pipes are close-on-exec, so no task inherits them."""
        req_r, req_w = os.pipe2(os.O_CLOEXEC)
        ack_r, ack_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            for fd in (req_r, req_w, ack_r, ack_w):
                os.close(fd)
            self._failed = True
            return False
        if pid == 0:  # pragma: no cover - runs in the helper (coverage cannot follow)
            code = 1
            try:
                _helper_setup(req_r, ack_w)
                _serve(req_r, ack_w, self.spares, self.slow)
                code = 0
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(ack_w)
        os.set_blocking(req_w, False)
        self.pid, self._requests, self._acks = pid, req_w, ack_r
        return True


def _helper_setup(requests: int, acks: int) -> None:  # pragma: no cover - in the helper
    """Leave the engine's signals and files behind, and never preempt it.

    Only stdin/stdout/stderr and the two pipes stay open (not the engine's lock, its
    database or its FIFO). SCHED_BATCH: a request does not make the helper preempt the
    engine that wrote it; it runs when a CPU is free or its fair share comes.
    """
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    try:
        open_fds: Iterable[int] = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = range(3, os.sysconf("SC_OPEN_MAX"))
    for fd in open_fds:
        if fd > 2 and fd not in (requests, acks):
            with contextlib.suppress(OSError):
                os.close(fd)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _serve(requests: int, acks: int, spares_root: str | None, slow: float) -> None:
    """The helper's loop: prepare paths in order until the engine closes the pipe."""
    queue: deque[bytes] = deque()
    buffer = b""
    spares = Spares(spares_root, slow)
    try:
        while True:
            if queue and not select.select([requests], [], [], 0)[0]:
                spares.place(os.fsdecode(queue.popleft()))
                continue
            chunk = os.read(requests, 65536)
            if not chunk:
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                if message[:1] == b"P":
                    queue.append(message[1:])
                elif message[:1] == b"F":
                    head = message[1:]
                    queue = deque(p for p in queue if not p.startswith(head))
                    os.write(acks, b"F")
    finally:
        spares.close()
