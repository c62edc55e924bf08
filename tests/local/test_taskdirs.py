"""Task directories made ahead by the helper process: what a task sees does not change.

The helper only creates what is missing; a task's own process still opens its logs with
O_TRUNC, the engine keeps no file of a task open, and nothing of a job is created once
the job's directories are being deleted. Real engine, real helper process, real files.
"""

from __future__ import annotations

import array
import fcntl
import os
import signal
import sys
import threading
from pathlib import Path

from batchflow.backends.local import LocalBackend
from batchflow.backends.local.control import engine_pid
from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.taskdirs import (
    FS_IOC_GETFLAGS,
    FS_TOPDIR_FL,
    SAMPLES,
    Spares,
    TaskDirs,
    prepare,
    spread,
)
from batchflow.dsl import Job
from tests.local.conftest import in_private_mounts, run, wait_for, wait_until_done

SH = "/bin/sh -c"


def processes_of(state_dir: Path) -> list[int]:
    """Pids whose command line names the state directory (the engine and its helper)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                cmdline = source.read()
            with open(f"/proc/{entry}/stat", "rb") as source:
                zombie = source.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if not zombie and os.fsencode(state_dir) in cmdline.split(b"\0"):
            found.append(int(entry))
    return found


# -- the helper on its own --------------------------------------------------------------


def test_prepare_makes_what_is_missing_and_never_truncates(tmp_path: Path) -> None:
    task = tmp_path / "t1"
    assert prepare(str(task))
    assert (task / "wd").is_dir()
    assert (task / "stdout.txt").read_bytes() == (task / "stderr.txt").read_bytes() == b""
    (task / "stdout.txt").write_text("attempt 1\n")
    assert prepare(str(task))  # a retry's directory: the logs are the task's to truncate
    assert (task / "stdout.txt").read_text() == "attempt 1\n"
    assert not prepare(str(tmp_path / "gone" / "t2"))  # parents are never created
    assert not (tmp_path / "gone").exists()


def test_the_helper_makes_the_window_and_keeps_no_file_open(tmp_path: Path) -> None:
    private = os.open(tmp_path / "engine-private", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    dirs = TaskDirs()
    try:
        paths = [str(tmp_path / f"t{i}") for i in range(20)]
        dirs.want(paths)
        for path in paths:
            wait_for(lambda path=path: os.path.exists(path + "/stderr.txt"))
        assert dirs.pid is not None
        fds = os.listdir(f"/proc/{dirs.pid}/fd")
        targets = [os.readlink(f"/proc/{dirs.pid}/fd/{fd}") for fd in fds]
        # the standard streams and its two pipes: not the engine's files, no task's logs
        assert len(fds) <= 5
        assert not [t for t in targets if "engine-private" in t or t.endswith(".txt")]
        for path in paths:
            dirs.ensure(path)  # already made: nothing to do, nothing changes
            assert sorted(os.listdir(path)) == ["stderr.txt", "stdout.txt", "wd"]
    finally:
        pid = dirs.pid
        dirs.close()
        os.close(private)
    assert pid is not None and not os.path.exists(f"/proc/{pid}")  # reaped, not a zombie


def test_nothing_is_made_under_a_forgotten_job_once_forget_returns(tmp_path: Path) -> None:
    job = tmp_path / "job-1"
    (job / "t000" / "wd").mkdir(parents=True)
    # t000's stdout.txt is a FIFO: the helper blocks opening it until someone reads
    os.mkfifo(job / "t000" / "stdout.txt")
    dirs = TaskDirs()
    try:
        dirs.want(str(job / f"t{i:03d}") for i in range(300))
        forgetting = threading.Thread(target=dirs.forget, args=([str(job)],))
        forgetting.start()
        reader = os.open(job / "t000" / "stdout.txt", os.O_RDONLY | os.O_NONBLOCK)
        forgetting.join()
        os.close(reader)
        assert os.listdir(job) == ["t000"]
    finally:
        dirs.close()  # waits for the helper to exit: it did all it was going to do
    assert os.listdir(job) == ["t000"]


def test_without_its_helper_the_engine_makes_directories_itself(tmp_path: Path) -> None:
    dirs = TaskDirs()
    dirs.want([str(tmp_path / "first")])
    wait_for(lambda: os.path.exists(tmp_path / "first" / "stderr.txt"))
    assert dirs.pid is not None
    os.kill(dirs.pid, signal.SIGKILL)
    dirs.want([str(tmp_path / f"t{i}") for i in range(5)])  # the helper is gone: no error
    for i in range(5):
        dirs.ensure(str(tmp_path / f"t{i}"))
        assert (tmp_path / f"t{i}" / "wd").is_dir()
    dirs.close()


def test_the_helper_makes_directories_in_spread_buckets_and_moves_them(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    supported = spread(str(probe))  # ext2/3/4 (the VMs' disks) have 'T'; tmpfs, xfs do not
    job = tmp_path / "job-1"
    job.mkdir()
    (job / "retry" / "wd").mkdir(parents=True)  # a retry's directory: kept, not replaced
    (job / "retry" / "wd" / "out.txt").write_text("attempt 1\n")
    spares = tmp_path / "spare"
    dirs = TaskDirs(spares=str(spares))
    try:
        paths = [str(job / f"t{i:03d}") for i in range(40)] + [str(job / "retry")]
        dirs.want(paths)
        for path in paths:
            wait_for(lambda path=path: os.path.exists(path + "/stderr.txt"))
        if supported:
            assert flags_of(spares) & FS_TOPDIR_FL  # buckets go where Orlov finds room
            assert len(os.listdir(spares)) == 1  # one bucket, now empty: all were moved
        else:
            assert not spares.exists()  # made in place (the tmpfs test below checks that)
        assert not flags_of(job / "t000") & FS_TOPDIR_FL
        # a gone parent is not made; the spare made for it waits for the next task
        dirs.want([str(tmp_path / "gone" / "t0"), str(job / "last")])
        wait_for(lambda: (job / "last" / "stderr.txt").exists())
        assert not (tmp_path / "gone").exists()
    finally:
        dirs.close()
    for path in [*paths, str(job / "last")]:
        assert sorted(os.listdir(path)) == ["stderr.txt", "stdout.txt", "wd"]
    assert (job / "retry" / "wd" / "out.txt").read_text() == "attempt 1\n"
    assert not spares.exists()  # what was not used is removed when the helper ends


def test_a_slow_bucket_is_left_for_a_new_one(tmp_path: Path) -> None:
    job = tmp_path / "job-1"
    job.mkdir()
    for slow, buckets in ((3600.0, 1), (0.0, 3)):  # never slow / always slow
        spares = Spares(str(tmp_path / f"spare-{slow}"), slow)
        if spares.root is None:  # not ext2/3/4: nothing is made in buckets
            buckets = 1
        seen = set()
        for i in range(3 * SAMPLES):
            assert spares.place(str(job / f"t{slow}-{i}"))
            seen.add(spares.bucket)
        assert len(seen) == buckets
        spares.close()


def test_without_the_t_attribute_directories_are_made_in_place(tmp_path: Path) -> None:
    """On tmpfs (no 'T' attribute) no spare is made: in a private mount namespace."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    code = (
        "import os, sys\n"
        "from batchflow.backends.local.taskdirs import Spares\n"
        "root = sys.argv[1]\n"
        "os.mkdir(root + '/job')\n"
        "spares = Spares(root + '/spare')\n"
        "assert spares.root is None\n"
        "assert spares.place(root + '/job/t1')\n"
        "assert sorted(os.listdir(root + '/job/t1')) == ['stderr.txt', 'stdout.txt', 'wd']\n"
        "assert not os.path.exists(root + '/spare') or not os.listdir(root + '/spare')\n"
        "print('in place')\n"
    )
    script = f'mount -t tmpfs tmpfs {mount_point} && exec {sys.executable} -c "$0" {mount_point}'
    result = in_private_mounts(script, code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "in place"


def flags_of(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return flags[0]
    finally:
        os.close(fd)


# -- through the engine -----------------------------------------------------------------


def test_a_retried_task_logs_only_its_last_attempt(backend: LocalBackend) -> None:
    job = Job("relog", max_task_retry_count=2)
    # attempt n writes 4 - n lines: a log that were not truncated would keep old lines
    script = (
        "n=$(cat ../count 2>/dev/null || echo 0); n=$((n+1)); echo $n > ../count; "
        'i=$n; while [ $i -lt 4 ]; do echo "out $n"; echo "err $n" >&2; i=$((i+1)); done; '
        '[ "$n" -ge 3 ]'
    )
    job.task("flaky", f"{SH} '{script}'")
    # enough tasks behind it that its retries are made ahead by the helper too
    for i in range(30):
        job.task(f"t{i}", "/bin/true")
    status = run(backend, job)
    assert status.counts.succeeded == 31
    assert backend.task("relog", "flaky").retry_count == 2
    assert backend.read_file("relog", "flaky", "stdout.txt") == b"out 3\n"
    assert backend.read_file("relog", "flaky", "stderr.txt") == b"err 3\n"


def test_the_engine_keeps_no_task_file_open_and_tasks_inherit_none(
    backend: LocalBackend,
) -> None:
    job = Job("fds")
    # The engine is the tasks' parent: a task can list the engine's open files.
    probe = f"{SH} 'ls -l /proc/$PPID/fd; echo; ls /proc/$$/fd'"
    first = job.task("first", probe)
    middle = [job.task(f"t{i:03d}", "/bin/true", after=first) for i in range(300)]
    job.task("last", probe, after=middle)
    run(backend, job)

    def listing(task: str) -> tuple[list[str], list[str]]:
        engine, own = backend.read_file("fds", task, "stdout.txt").decode().split("\n\n")
        targets = [line.split(" -> ")[1] for line in engine.splitlines() if " -> " in line]
        return targets, own.split()

    before, own_first = listing("first")
    after, own_last = listing("last")
    assert len(after) == len(before)  # 300 tasks later, not one descriptor more
    assert not [t for t in after if t.endswith((".txt", "/wd"))]
    # close-on-exec everywhere: a task gets stdin, stdout and stderr, nothing else
    assert own_first == own_last == ["0", "1", "2"]


def test_terminate_and_delete_with_tasks_made_ahead(backend: LocalBackend, state_dir: Path) -> None:
    job = Job("ahead")
    job.task("a", "/bin/sleep 60")
    job.task("b", "/bin/sleep 60")
    for i in range(20):
        job.task(f"w{i:02d}", "/bin/true")
    backend.submit(job)
    job_dir = state_dir / "nodes" / "node-1" / "workitems" / "ahead" / "job-1"
    # both slots busy: the helper makes the directories of the next waiting tasks
    wait_for(lambda: backend.job_status("ahead").counts.running == 2)
    wait_for(lambda: (job_dir / "w00" / "stderr.txt").exists())
    assert backend.task("ahead", "w00").state == "active"
    backend.terminate("ahead")
    status = wait_until_done(backend, "ahead")
    assert status.state == "completed"
    assert status.counts.active == 20  # made ahead, never run: still active, as on Batch
    backend.delete("ahead")
    wait_for(lambda: not (state_dir / "nodes" / "node-1" / "workitems" / "ahead").exists())
    wait_for(lambda: not (state_dir / "trash").exists())  # removed whole: nothing recreated
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    wait_for(lambda: not processes_of(state_dir))  # the helper is gone with its engine


def test_after_a_sigkill_the_helper_goes_and_requeued_tasks_log_afresh(
    state_dir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    backend = LocalBackend(state_dir, slots=2)
    job = Job("killed", on_all_tasks_complete="terminatejob")
    for i in range(30):  # from t04 on, each task waits for the gate after its echo
        wait = f"; until test -e {gate}; do sleep 0.01; done" if i >= 4 else ""
        job.task(f"t{i:02d}", f"{SH} 'echo t{i:02d}{wait}'")
    backend.submit(job)
    wait_for(lambda: len(backend.tasks("killed", state="running")) == 2)
    wait_for(lambda: backend.job_status("killed").counts.completed == 4)
    pid = engine_pid(StateDir(state_dir))
    assert pid and pid > 0
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: engine_pid(StateDir(state_dir)) is None)
    gate.touch()
    # the helper sees its pipe close and exits by itself
    wait_for(lambda: not processes_of(state_dir))
    backend.ensure_progress("killed")
    status = wait_until_done(backend, "killed")
    assert status.counts.succeeded == 30
    assert len([t for t in backend.tasks("killed") if t.requeue_count]) == 2  # ran twice
    for i in range(30):
        assert backend.read_file("killed", f"t{i:02d}", "stdout.txt") == f"t{i:02d}\n".encode()
    backend.close()


def test_a_pipeline_stage_is_made_ahead_while_the_one_before_runs(
    backend: LocalBackend, state_dir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job = Job("stages", on_all_tasks_complete="terminatejob")
    # waits for the gate (at most a minute, so a failing test leaves nothing behind)
    wait = f"i=0; while [ ! -e {gate} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done"
    first = job.task("first", f"{SH} '{wait}'")
    job.map("next-{i}", "/bin/true", i=range(6), after=first)
    backend.submit(job)
    job_dir = state_dir / "nodes" / "node-1" / "workitems" / "stages" / "job-1"
    try:
        wait_for(lambda: backend.task("stages", "first").state == "running")
        # the next stage waits for `first`, and its directories are made meanwhile
        wait_for(lambda: (job_dir / "next-0" / "stderr.txt").exists())
        assert backend.task("stages", "next-0").state == "active"
    finally:
        gate.touch()
    status = wait_until_done(backend, "stages")
    assert status.counts.succeeded == 7
