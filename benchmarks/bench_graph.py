"""Build, validate and export a 1,000,000-task flow; compare with networkx; time `--help`.

    python benchmarks/bench_graph.py [--layers 1000] [--width 1000]

The flow has `layers` x `width` tasks; each task after the first layer depends on 2 tasks
of the previous layer. batchflow builds it with the DSL, validates it (cycle check and every
other rule included) and exports it as Batch JSON to a file. networkx builds the same graph
and runs `is_directed_acyclic_graph` plus a topological sort. Each side runs in its own
fresh interpreter, so its peak RSS is its own; the figures are printed side by side with
their ratio. Targets: batchflow <= 10 s and <= 2 GB peak RSS, faster than networkx;
`batchflow --help` median of 10 <= 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def task_id(layer: int, index: int) -> str:
    return f"l{layer}-t{index}"


def parents(index: int, width: int) -> tuple[int, int]:
    return index, (index + 1) % width


def run_batchflow(layers: int, width: int) -> dict[str, float]:
    from batchflow import Job
    from batchflow.export import write_job
    from batchflow.validation import validate

    started = time.perf_counter()
    job = Job("bench", pool="p", on_all_tasks_complete="terminatejob")
    previous: list[object] = []
    for layer in range(layers):
        current = []
        for index in range(width):
            after = None
            if previous:
                a, b = parents(index, width)
                after = [previous[a], previous[b]]
            current.append(job.task(task_id(layer, index), "/bin/true", after=after))  # type: ignore[arg-type]
        previous = current
    built = time.perf_counter()
    problems = validate(job)
    errors = [p for p in problems if p.severity == "error"]
    assert not errors, errors[:3]
    validated = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        write_job(job, out)
        path = out.name
    exported = time.perf_counter()
    size = os.path.getsize(path)
    os.unlink(path)
    return {
        "build_s": built - started,
        "validate_s": validated - built,
        "export_s": exported - validated,
        "total_s": exported - started,
        "export_mb": size / 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tasks": len(job),
    }


def run_networkx(layers: int, width: int) -> dict[str, float]:
    import networkx as nx

    started = time.perf_counter()
    graph = nx.DiGraph()
    for layer in range(layers):
        for index in range(width):
            node = task_id(layer, index)
            graph.add_node(node)
            if layer:
                for parent in parents(index, width):
                    graph.add_edge(task_id(layer - 1, parent), node)
    built = time.perf_counter()
    assert nx.is_directed_acyclic_graph(graph)
    order = list(nx.topological_sort(graph))
    assert len(order) == layers * width
    checked = time.perf_counter()
    return {
        "build_s": built - started,
        "validate_s": checked - built,
        "total_s": checked - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_fresh_interpreter(part: str, layers: int, width: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--part", part, "--layers", str(layers), "--width", str(width)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def help_median(runs: int = 10) -> float:
    command = [str(Path(sys.executable).parent / "batchflow"), "--help"]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=1000)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--part", choices=["batchflow", "networkx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        run = run_batchflow if args.part == "batchflow" else run_networkx
        print(json.dumps(run(args.layers, args.width)))
        return

    tasks = args.layers * args.width
    print(f"graph: {args.layers:,} layers x {args.width:,} tasks = {tasks:,} tasks, 2 parents each")
    ours = in_fresh_interpreter("batchflow", args.layers, args.width)
    theirs = in_fresh_interpreter("networkx", args.layers, args.width)
    print(f"{'':28}{'batchflow':>12}{'networkx':>12}")
    print(f"{'build (s)':28}{ours['build_s']:12.2f}{theirs['build_s']:12.2f}")
    print(
        f"{'validate / DAG+toposort (s)':28}{ours['validate_s']:12.2f}{theirs['validate_s']:12.2f}"
    )
    print(f"{'export JSON (s)':28}{ours['export_s']:12.2f}{'-':>12}")
    print(f"{'total (s)':28}{ours['total_s']:12.2f}{theirs['total_s']:12.2f}")
    print(f"{'peak RSS (MB)':28}{ours['peak_rss_mb']:12.0f}{theirs['peak_rss_mb']:12.0f}")
    print(f"exported JSON: {ours['export_mb']:.0f} MB")
    ratio = theirs["total_s"] / ours["total_s"]
    print(
        f"batchflow build+validate+export is {ratio:.2f}x as fast as "
        "networkx build+DAG check+toposort"
    )
    ok_time = ours["total_s"] <= 10 and ours["peak_rss_mb"] <= 2048 and ratio > 1
    print(f"target <= 10 s, <= 2 GB, faster than networkx: {'met' if ok_time else 'NOT met'}")
    median = help_median()
    print(
        f"batchflow --help: median of 10 = {median:.3f} s (target <= 0.3 s: "
        f"{'met' if median <= 0.3 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
