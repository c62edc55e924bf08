"""The fixed cost of a CLI command: status, tasks and logs of a 100-task job, validate of a
100-task flow. Each command runs 10 times in a fresh process; the median is printed. Then
`tasks` of a 20,000-task job (all completed), as a table and as JSON: 3 runs each,
target <= 2 s (the listing is paged and printed page by page, never held whole).

    python benchmarks/bench_cli.py [--code DIR ...] [--runs 10] [--no-big]

`--code DIR` runs the batchflow found in DIR (PYTHONPATH); give it twice to compare two
versions with the same interpreter, their runs interleaved so that a busy machine weighs
on both alike. Target: <= 0.2 s each on this project's 2-core machine (the last version).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.2

FLOW = """\
from batchflow import Job

job = Job("bench-cli", pool="p", on_all_tasks_complete="terminatejob")
for i in range(100):
    job.task(f"t{i:03d}", "/bin/echo task", wall_clock="1m")
"""


def run(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of `command`.

    `cwd` must not hold a `batchflow` folder: `python -m` puts the current directory
    before PYTHONPATH, which would run that batchflow instead of the one asked for.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="batchflow's source folder (repeat to compare versions; default: this one)",
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-big", action="store_true", help="skip the 20,000-task listing")
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code or [REPO]]
    # Bytecode is cached as in any install (the first, unmeasured round writes it), even
    # where the environment says PYTHONDONTWRITEBYTECODE: compiling every module from
    # source on each start would be measured instead of the command.
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = [{**base, "PYTHONPATH": str(code)} for code in codes]
    cli = [sys.executable, "-m", "batchflow"]
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        flow = Path(tmp) / "flow.py"
        flow.write_text(FLOW)
        states = [Path(tmp) / f"state-{n}" for n in range(len(codes))]
        for env, state in zip(envs, states, strict=True):
            subprocess.run(
                [*cli, "submit", str(flow), "--state-dir", str(state)],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
            )
        commands = {
            "status JOB": ["status", "bench-cli"],
            "tasks JOB (100 tasks)": ["tasks", "bench-cli"],
            "logs JOB TASK": ["logs", "bench-cli", "t042"],
            "validate FLOW (100 tasks)": ["validate", str(flow)],
            "--help": ["--help"],
        }
        print(f"median of {args.runs} runs, versions interleaved run by run:")
        for n, code in enumerate(codes):
            print(f"  [{n}] {code}")
        print(
            "wall-clock seconds, then CPU seconds (user + system: less sensitive to a busy machine)"
        )
        heads = "".join(f"{f'wall [{n}]':>11}" for n in range(len(codes)))
        heads += "".join(f"{f'cpu [{n}]':>11}" for n in range(len(codes)))
        print(f"  {'command':<28}{heads}")
        for name, words in commands.items():
            times: list[list[float]] = [[] for _ in codes]
            cpus: list[list[float]] = [[] for _ in codes]
            for run_index in range(args.runs + 1):
                for n, (env, state) in enumerate(zip(envs, states, strict=True)):
                    state_args = ["--state-dir", str(state)] if words[0] != "validate" else []
                    if words[0] == "--help":
                        state_args = []
                    elapsed, cpu = run([*cli, *words, *state_args], env, tmp)
                    if run_index:  # the first round warms the file cache
                        times[n].append(elapsed)
                        cpus[n].append(cpu)
            medians = [statistics.median(t) for t in times]
            line = "".join(f"{m:>10.3f}s" for m in medians)
            line += "".join(f"{statistics.median(c):>10.3f}s" for c in cpus)
            verdict = "met" if medians[-1] <= TARGET else "NOT met"
            print(f"  {name:<28}{line}   (target <= {TARGET} s: {verdict})")
        if not args.no_big:
            big_listing(cli, envs[-1], tmp)


BIG = """\
from batchflow import Job

job = Job("bench-big")
job.map("t-{i:05d}", "/bin/true", i=range(20000))
"""
BIG_TARGET = 2.0


def big_listing(cli: list[str], env: dict[str, str], tmp: str) -> None:
    """`tasks` of a 20,000-task job, table and JSON (the last version only)."""
    flow = Path(tmp) / "big.py"
    flow.write_text(BIG)
    state = ["--state-dir", str(Path(tmp) / "state-big")]
    subprocess.run(
        [*cli, "submit", str(flow), *state], env=env, cwd=tmp, check=True, capture_output=True
    )
    print("tasks of a 20,000-task job (median of 3, wall then CPU seconds):")
    for name, extra in (("table", []), ("--output json", ["--output", "json"])):
        runs = [run([*cli, "tasks", "bench-big", *state, *extra], env, tmp) for _ in range(4)]
        wall = statistics.median(r[0] for r in runs[1:])
        cpu = statistics.median(r[1] for r in runs[1:])
        verdict = "met" if wall <= BIG_TARGET else "NOT met"
        print(f"  {name:<28}{wall:>10.3f}s{cpu:>10.3f}s   (target <= {BIG_TARGET} s: {verdict})")


if __name__ == "__main__":
    main()
