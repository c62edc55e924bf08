"""The Azure backend's submission against `batchflow emulator`, beside its peers.

    python benchmarks/bench_azure.py [--tasks 100000] [--single 3000]

The emulator runs as `batchflow emulator` in its own process, with a pool of no nodes
(nothing runs: what is measured is adding). Each contender adds the same task list (the
wire dicts of a flow's `job.map`) to a fresh job, in this process:

- batchflow: `AzureBackend.submit` of the flow (exactly-once bookkeeping included: a hash
  per task, per-task result handling, the job created `noaction` then updated);
- the SDK's own `create_tasks` with its default concurrency, from the same wire dicts
  (building its models is part of its work);
- one `create_task` per task, on the first `--single` tasks (100,000 single adds take
  minutes); its rate is extrapolated to the whole list and printed as such.

Targets (issue 11): batchflow >= 10x faster than one add per task, and <= 1.0x the time of
`create_tasks`. Also: `batchflow --help` <= 0.2 s with the Azure SDK installed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_emulator(state: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "batchflow", "emulator", "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None
    endpoint = server.stdout.readline().split()[2]
    return server, endpoint


def help_time() -> float:
    """Median wall time of `batchflow --help` over 5 runs (after one that writes the
    bytecode a user's installed copy has: PYTHONDONTWRITEBYTECODE, set in some shells,
    would make every run compile every module)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    subprocess.run(
        [sys.executable, "-m", "batchflow", "--help"],
        stdout=subprocess.DEVNULL,
        check=True,
        env=env,
    )
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "batchflow", "--help"],
            stdout=subprocess.DEVNULL,
            check=True,
            env=env,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=3_000)
    args = parser.parse_args()

    from azure.batch import models as m

    from batchflow.backends.azure import AzureBackend
    from batchflow.backends.azure.client import batch_client
    from batchflow.dsl import Job
    from batchflow.emulator import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
    from batchflow.stack import AzureTarget

    with tempfile.TemporaryDirectory(prefix="bench-azure-") as tmp:
        server, endpoint = start_emulator(Path(tmp) / "state")
        try:
            target = AzureTarget(
                endpoint=endpoint,
                account_name=DEV_ACCOUNT_NAME,
                source="bench",
                account_key=DEV_ACCOUNT_KEY,
            )
            client = batch_client(target)
            client.create_pool({"id": "idle", "vmSize": "standard_d2s_v3"})  # type: ignore[arg-type]

            def flow(job_id: str) -> Job:
                job = Job(job_id, pool="idle", on_all_tasks_complete="terminatejob")
                job.map("task-{i:06d}", "/bin/true", i=range(args.tasks))
                return job

            wires = flow("wires").to_wire()["tasks"]

            backend = AzureBackend(target)
            job = flow("batchflow")
            start = time.perf_counter()
            result = backend.submit(job)
            ours = time.perf_counter() - start
            assert result.added == args.tasks

            client.create_job({"id": "sdk", "poolInfo": {"poolId": "idle"}})  # type: ignore[arg-type]
            start = time.perf_counter()
            sdk_tasks = [m.BatchTaskCreateOptions(w) for w in wires]
            outcome = client.create_tasks("sdk", sdk_tasks)
            sdk = time.perf_counter() - start
            assert len(outcome.as_dict()["value"]) == args.tasks

            client.create_job({"id": "single", "poolInfo": {"poolId": "idle"}})  # type: ignore[arg-type]
            sample = wires[: args.single]
            start = time.perf_counter()
            for wire in sample:
                client.create_task("single", m.BatchTaskCreateOptions(wire))
            single = (time.perf_counter() - start) / len(sample) * args.tasks
            client.close()
            backend.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

    print(f"{args.tasks:,} tasks added to the emulator (one process each side, 2 cores)")
    print(
        f"  batchflow submit (exactly once):      {ours:6.1f} s  {args.tasks / ours:8,.0f} tasks/s"
    )
    print(f"  SDK create_tasks (default):           {sdk:6.1f} s  {args.tasks / sdk:8,.0f} tasks/s")
    print(
        f"  one create_task per task (from {args.single:,}): {single:6.1f} s  "
        f"{args.tasks / single:8,.0f} tasks/s"
    )
    vs_single = single / ours
    vs_sdk = ours / sdk
    print(
        f"  batchflow vs one add per task: {vs_single:.1f}x faster "
        f"(target >= 10x: {'MET' if vs_single >= 10 else 'MISSED'})"
    )
    print(
        f"  batchflow vs create_tasks: {vs_sdk:.2f}x its time "
        f"(target <= 1.0x: {'MET' if vs_sdk <= 1.0 else 'MISSED'})"
    )
    took = help_time()
    print(
        f"  batchflow --help: {took:.3f} s (target <= 0.2 s: {'MET' if took <= 0.2 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
