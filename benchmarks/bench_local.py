"""The local engine against the tools people would otherwise use, side by side.

    python benchmarks/bench_local.py [independent|layers|big|crash|all]

- independent: 2,000 `/bin/true` tasks on 2 slots vs `xargs -P2` (target <= 1.5x);
- layers: 20 layers x 100 tasks, each depending on 2 tasks of the previous layer, 2 slots,
  vs `make -j2` and `ninja -j2` (target <= 1.2x ninja);
- big: a 100,000-task job of `/bin/true`: peak RSS of the engine (target <= 500 MB) and
  state-file bytes per task;
- crash: 20 runs of a 300-task flow (each task appends its id to its own file), the engine
  SIGKILLed at a random moment and resumed: lost results (target 0) and tasks run twice
  (only those running at the kill may be).

Times are wall clock from submit to the last task's completion being visible, and include
the engine's start. `independent` and `layers` run ROUNDS rounds (each round: the engine,
then its peers, each on a fresh tree) and print every round and the medians; the ratio
is of the medians. The machines are noisy (the filesystem too: creating a file costs more
for a minute after a tree was deleted), and one round is one sample.

ninja is installed into this Python's environment from PyPI (`pip install ninja`) when it
is not on PATH.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batchflow.backends.local import LocalBackend  # noqa: E402
from batchflow.backends.local.control import engine_pid  # noqa: E402
from batchflow.backends.local.paths import StateDir  # noqa: E402
from batchflow.dsl import Job  # noqa: E402


def wait(backend: LocalBackend, job_id: str, poll: float = 0.02) -> None:
    """Wait for the job (a gentle poll: the watcher must not steal the engine's CPU)."""
    checked = time.monotonic()
    while True:
        status = backend.job_status(job_id)
        if status.state == "completed" or status.settled:
            return
        if time.monotonic() - checked > 1.0:
            backend.ensure_progress(job_id)
            checked = time.monotonic()
        time.sleep(poll)


def run_engine(job: Job, root: Path, slots: int = 2) -> float:
    backend = LocalBackend(root / "state", slots=slots)
    start = time.perf_counter()
    backend.submit(job)
    wait(backend, job.id)
    took = time.perf_counter() - start
    status = backend.job_status(job.id)
    assert status.counts.succeeded == status.counts.total, status
    backend.close()
    while engine_pid(StateDir(root / "state")) is not None:
        time.sleep(0.01)
    return took


def timed(command: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


ROUNDS = 3
#: Where every measurement gets a fresh directory; removed at the end, not in between, so
#: that no measurement runs in the wake of the previous one's clean-up.
_SCRATCH: list[Path] = []


def scratch() -> Path:
    """A new, empty directory for one measurement."""
    path = Path(tempfile.mkdtemp(dir=_SCRATCH[0] if _SCRATCH else None))
    return path


def ninja_command() -> str:
    """The ninja binary: on PATH, next to this Python, or installed there from PyPI."""
    here = str(Path(sys.executable).parent)
    found = shutil.which("ninja") or shutil.which("ninja", path=here)
    if found is None:
        print("ninja is missing: pip install ninja", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ninja"], check=True)
        found = shutil.which("ninja", path=here)
    if found is None:
        raise SystemExit("ninja could not be installed")
    return found


def rounds(measure: object, names: tuple[str, ...]) -> dict[str, float]:
    """Run `measure()` (a dict of times by name) ROUNDS times; print each; the medians."""
    seen: dict[str, list[float]] = {name: [] for name in names}
    for i in range(ROUNDS):
        times = measure()  # type: ignore[operator]
        print(f"  round {i + 1}: " + "  ".join(f"{k} {times[k]:.2f}s" for k in names))
        for name in names:
            seen[name].append(times[name])
    return {name: statistics.median(values) for name, values in seen.items()}


def independent(n: int = 2000) -> None:
    print(f"independent: {n:,} /bin/true, 2 slots")

    flow = (
        "from batchflow import Job\n"
        "job = Job('independent', pool='local', on_all_tasks_complete='terminatejob')\n"
        f"job.map('t{{i}}', '/bin/true', i=range({n}), wall_clock='1h')\n"
    )

    def measure() -> dict[str, float]:
        job = Job("independent", on_all_tasks_complete="terminatejob")
        for i in range(n):
            job.task(f"t{i}", "/bin/true")
        engine = run_engine(job, scratch())
        xargs = timed(["xargs", "-P2", "-n1", "/bin/true"], input=("x\n" * n).encode())
        # The same through the CLI, as a user runs it: Python's start, the flow file.
        folder = scratch()
        (folder / "flow.py").write_text(flow)
        cli = timed(
            [sys.executable, "-m", "batchflow", "submit", "flow.py", "--slots", "2"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
        )
        return {"batchflow": engine, "xargs -P2": xargs, "batchflow submit (CLI)": cli}

    median = rounds(measure, ("batchflow", "xargs -P2", "batchflow submit (CLI)"))
    engine, xargs = median["batchflow"], median["xargs -P2"]
    cli = median["batchflow submit (CLI)"]
    print(
        f"  median: batchflow {engine:.2f}s  xargs -P2 {xargs:.2f}s  "
        f"ratio {engine / xargs:.2f}x  (target <= 1.5x)"
    )
    print(f"  through the CLI: {cli:.2f}s, {cli / xargs:.2f}x xargs (with Python's start-up)")


def layers(width: int = 100, depth: int = 20) -> None:
    ninja_bin = ninja_command()
    print(f"layers: {depth} x {width} tasks, 2 parents each, 2 slots")

    def measure() -> dict[str, float]:
        root = scratch()
        job = Job("layers", on_all_tasks_complete="terminatejob")
        rng = random.Random(7)
        previous: list[str] = []
        make_lines = ["all: " + " ".join(f"l{depth - 1}_{i}" for i in range(width)), ""]
        ninja_lines = ["rule true", "  command = /bin/true", ""]
        for layer in range(depth):
            current = []
            for i in range(width):
                name = f"l{layer}_{i}"
                parents = rng.sample(previous, 2) if previous else []
                job.task(name, "/bin/true", after=parents or None)
                make_lines += [f"{name}: {' '.join(parents)}", "\t@/bin/true", ""]
                ninja_lines.append(
                    f"build {name}: true" + (f" || {' '.join(parents)}" if parents else "")
                )
                current.append(name)
            previous = current
        make_lines.insert(
            0, ".PHONY: " + " ".join(f"l{d}_{i}" for d in range(depth) for i in range(width))
        )
        (root / "Makefile").write_text("\n".join(make_lines) + "\n")
        (root / "build.ninja").write_text("\n".join(ninja_lines) + "\n")
        engine = run_engine(job, root / "engine")
        make = timed(["make", "-s", "-j2", "-C", str(root)])
        ninja = timed([ninja_bin, "-j2", "-C", str(root)], stdout=subprocess.DEVNULL)
        return {"batchflow": engine, "make -j2": make, "ninja -j2": ninja}

    median = rounds(measure, ("batchflow", "make -j2", "ninja -j2"))
    engine, make, ninja = median["batchflow"], median["make -j2"], median["ninja -j2"]
    print(
        f"  median: batchflow {engine:.2f}s  make -j2 {make:.2f}s  ninja -j2 {ninja:.2f}s  "
        f"ratio {engine / ninja:.2f}x ninja, {engine / make:.2f}x make  (target <= 1.2x ninja)"
    )


def big(n: int = 100_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        job = Job("big", on_all_tasks_complete="terminatejob")
        for i in range(n):
            job.task(f"t{i}", "/bin/true")
        backend = LocalBackend(root / "state", slots=2)
        start = time.perf_counter()
        backend.submit(job)
        submitted = time.perf_counter() - start
        pid = engine_pid(StateDir(root / "state"))
        while pid is None:
            time.sleep(0.01)
            pid = engine_pid(StateDir(root / "state"))
        peak = 0
        while True:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                break
            status = backend.job_status("big")
            if status.state == "completed":
                break
            time.sleep(0.5)
        took = time.perf_counter() - start
        assert backend.job_status("big").counts.succeeded == n
        backend.close()
        while engine_pid(StateDir(root / "state")) is not None:
            time.sleep(0.05)
        db = root / "state" / "state.db"
        import sqlite3

        with contextlib.closing(sqlite3.connect(str(db))) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(p.stat().st_size for p in db.parent.glob("state.db*"))
    print(f"big: {n:,} /bin/true tasks, 2 slots")
    print(
        f"  engine peak RSS {peak / 1024:.0f} MB (target <= 500 MB)  state file "
        f"{size / n:.0f} bytes/task  submit {submitted:.1f}s  total {took:.1f}s "
        f"({took / n * 1000:.2f} ms/task)"
    )


def crash(runs: int = 20, n: int = 300) -> None:
    lost = twice = allowed = 0
    rng = random.Random(11)
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            out = root / "out"
            out.mkdir()
            job = Job("crash", on_all_tasks_complete="terminatejob")
            for i in range(n):
                job.task(f"t{i}", f"/bin/sh -c 'echo t{i} >> {out}/t{i}'")
            backend = LocalBackend(root / "state", slots=2)
            backend.submit(job)
            time.sleep(rng.uniform(0.05, 0.6))
            pid = engine_pid(StateDir(root / "state"))
            if pid:
                os.kill(pid, signal.SIGKILL)
            while engine_pid(StateDir(root / "state")) is not None:
                time.sleep(0.005)
            before = {t.id: t for t in backend.tasks("crash")}
            running = {i for i, t in before.items() if t.state == "running"}
            wait(backend, "crash")
            after = {t.id: t for t in backend.tasks("crash")}
            lost += sum(1 for i, t in before.items() if t.state == "completed" and after[i] != t)
            lost += sum(1 for t in after.values() if t.result != "success")
            doubles = {p.name for p in out.iterdir() if len(p.read_text().split()) > 1}
            twice += len(doubles)
            allowed += len(doubles & running)
            lost += n - len(list(out.iterdir()))
            backend.close()
            while engine_pid(StateDir(root / "state")) is not None:
                time.sleep(0.01)
    print(f"crash: {runs} runs of {n} tasks, SIGKILL at a random moment, then resume")
    print(
        f"  lost results {lost} (target 0)  tasks run twice {twice} "
        f"(of which running at the kill: {allowed})"
    )


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        _SCRATCH.append(Path(tmp))
        run_benchmarks(which)


def run_benchmarks(which: str) -> None:
    for name, bench in (
        ("independent", independent),
        ("layers", layers),
        ("big", big),
        ("crash", crash),
    ):
        if which in (name, "all"):
            bench()


if __name__ == "__main__":
    main()
