"""Adding tasks through the local Batch service costs what is added, not what the job holds.

    python benchmarks/bench_service.py [--tasks 100000] [--chunk 100]

100,000 tasks are added to one job in 1,000 adds of 100 (`BatchService.add_tasks`, what
the emulator's `addtaskcollection` will call), each task with a dependency on a task of
the previous add, and every one of them waiting (through a dependency) for a `gate` task
that is added only at the end, so nothing runs meanwhile; an engine process is woken by
every add and loads the new tasks as they come, as it would while a pool runs.

A warm-up job of two adds comes first, so that imports and the engine's start are not
counted in the first adds. Each order runs three rounds (the machines are noisy: one WAL
checkpoint or a collision with the engine's transaction moves a sum of 10 adds), and the
verdict is on the median ratio. Printed: the time of the first 10 adds and of the last
10 (target: the last 10 take at most 1.5x the first 10), the adds and tasks per second
overall, in order and in the SDK's order (chunks sent from the end of the list, so
dependents arrive before their parents). The baseline for the ratio is the service
itself at the start of the job: an O(N) add path keeps it near 1.0x, a path that reloads
the job on every add grows with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from batchflow.backends.local.control import engine_pid  # noqa: E402
from batchflow.backends.local.paths import StateDir  # noqa: E402
from batchflow.backends.local.service import BatchService  # noqa: E402


def chunks(total: int, size: int, *, reverse: bool) -> list[list[dict[str, object]]]:
    """The task collections to send: ids t-0..t-N, each depending on the gate and on the
    task `size` before it (in the previous collection)."""
    tasks = []
    for i in range(total):
        parents = ["gate"] + ([f"t-{i - size}"] if i >= size else [])
        tasks.append(
            {"id": f"t-{i}", "commandLine": "/bin/true", "dependsOn": {"taskIds": parents}}
        )
    groups = [tasks[i : i + size] for i in range(0, total, size)]
    return groups[::-1] if reverse else groups


def run(total: int, size: int, *, reverse: bool) -> dict[str, float]:
    """Add the collections; times per add."""
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        state = StateDir(Path(tmp) / "state")
        service = BatchService(state)
        # Warm up first (imports, the engine's start) so the first adds measure adding.
        service.create_job(
            {"id": "warm", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True}
        )
        for group in chunks(2 * size, size, reverse=False):
            service.add_tasks("warm", group)
        service.create_job({"id": "big", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": True})
        times: list[float] = []
        started = time.perf_counter()
        for group in chunks(total, size, reverse=reverse):
            t0 = time.perf_counter()
            results = service.add_tasks("big", group)
            times.append(time.perf_counter() - t0)
            if any(r["status"] != "success" for r in results):
                raise SystemExit(f"an add failed: {results[0]}")
        elapsed = time.perf_counter() - started
        counts = service.task_counts("big")["taskCounts"]
        if counts["active"] != total:
            raise SystemExit(f"expected {total} active tasks, the service counts {counts}")
        pid = engine_pid(state)
        service.close()
        if pid and pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    first, last = sum(times[:10]), sum(times[-10:])
    return {
        "first": first,
        "last": last,
        "ratio": last / first,
        "adds": len(times) / elapsed,
        "tasks": total / elapsed,
        "elapsed": elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.tasks:,} tasks added to one job in adds of {args.chunk}, through the service")
    ok = True
    for label, reverse in (("in order", False), ("SDK order (last chunk first)", True)):
        rounds = []
        for n in range(1, args.rounds + 1):
            r = run(args.tasks, args.chunk, reverse=reverse)
            rounds.append(r)
            print(
                f"  {label}, round {n}: first 10 adds {r['first'] * 1000:.0f} ms, last 10 "
                f"{r['last'] * 1000:.0f} ms, ratio {r['ratio']:.2f}x; {r['adds']:.0f} adds/s, "
                f"{r['tasks']:,.0f} tasks/s, {r['elapsed']:.1f} s in all"
            )
        ratio = statistics.median(r["ratio"] for r in rounds)
        adds = statistics.median(r["adds"] for r in rounds)
        met = ratio <= 1.5
        ok &= met
        print(
            f"  {label}: median ratio {ratio:.2f}x (target <= 1.5x: "
            f"{'MET' if met else 'NOT MET'}), median {adds:.0f} adds/s"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
