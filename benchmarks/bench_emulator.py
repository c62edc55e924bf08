"""The emulator under the azure-batch SDK: adding and listing 100,000 tasks.

    python benchmarks/bench_emulator.py [--tasks 100000]

The emulator runs as `batchflow emulator` in its own process (so its CPU time and peak
RSS are its own, read from /proc); the client is the pinned azure-batch SDK in this
process. Printed:

- tasks/s accepted by `create_tasks` with its default concurrency (one thread, chunks
  of 100) (target >= 5,000/s on 2 cores);
- the emulator's CPU seconds over the client's for that work (target <= 1: the server
  is not the bottleneck);
- the emulator's peak RSS (target <= 300 MB);
- the time to list the tasks through the SDK's paged `list_tasks` (target <= 10 s), 1,000
  a page;
- the same pages fetched as raw HTTP through the SDK's own pipeline (`send_request`,
  following `odata.nextLink`: Shared Key, retries, the response's JSON parsed) without
  building the SDK's models: the listing's time when the emulator and HTTP bound it,
  against the same 10 s. The difference from `list_tasks` is the SDK's client-side
  model building (azure-batch 15's `_deserialize`, in this process), given as a share
  of the `list_tasks` time and as client CPU seconds. Each listing also shows the
  emulator's and the client's CPU seconds, since wall times on a loaded machine include
  waiting for a core.

The job's pool does not exist, so nothing runs meanwhile: what is measured is the API.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Items a page, for both listings (Batch's default and largest maxresults).
PAGE = 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process in MB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def list_raw(client: Any, url: str, page: int) -> int:
    """Pages of a listing fetched through the client's own pipeline (`send_request`:
    its auth, retry and decoding policies), following `odata.nextLink`, without the
    SDK's models: the number of items."""
    from azure.core.rest import HttpRequest

    count = 0
    next_url: str | None = f"{url}?api-version={client._config.api_version}&maxresults={page}"
    while next_url:
        response = client.send_request(HttpRequest("GET", next_url))
        response.raise_for_status()
        body = response.json()
        count += len(body["value"])
        next_url = body.get("odata.nextLink")
    return count


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()

    from azure.batch import BatchClient
    from azure.batch import models as m
    from azure.core.credentials import AzureNamedKeyCredential

    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "batchflow",
                "emulator",
                "--port",
                "0",
                "--state-dir",
                str(Path(tmp) / "state"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            endpoint = line.split()[2]
            from batchflow.emulator import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

            client = BatchClient(
                endpoint, AzureNamedKeyCredential(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)
            )
            client.create_job(
                m.BatchJobCreateOptions(id="bench", pool_info=m.BatchPoolInfo(pool_id="none"))
            )
            tasks = [
                m.BatchTaskCreateOptions(id=f"task-{i:06d}", command_line="/bin/true")
                for i in range(args.tasks)
            ]
            from batchflow.backends.local.control import engine_pid
            from batchflow.backends.local.paths import StateDir

            engine = engine_pid(StateDir(Path(tmp) / "state"))
            engine_before = cpu_seconds(engine) if engine else 0.0
            server_before, client_before = cpu_seconds(server.pid), own_cpu()
            start = time.perf_counter()
            result = client.create_tasks("bench", tasks)
            elapsed = time.perf_counter() - start
            server_cpu = cpu_seconds(server.pid) - server_before
            client_cpu = own_cpu() - client_before
            engine_after = engine_pid(StateDir(Path(tmp) / "state"))
            same = engine and engine == engine_after
            engine_cpu = cpu_seconds(engine) - engine_before if same else float("nan")
            assert len(result.result_values) == args.tasks
            server_before, client_before = cpu_seconds(server.pid), own_cpu()
            start = time.perf_counter()
            listed = sum(1 for _ in client.list_tasks("bench", max_results=PAGE))
            listing = time.perf_counter() - start
            listing_cpu = (cpu_seconds(server.pid) - server_before, own_cpu() - client_before)
            assert listed == args.tasks, listed
            server_before, client_before = cpu_seconds(server.pid), own_cpu()
            start = time.perf_counter()
            fetched = list_raw(client, f"{endpoint}/jobs/bench/tasks", PAGE)
            raw_listing = time.perf_counter() - start
            raw_cpu = (cpu_seconds(server.pid) - server_before, own_cpu() - client_before)
            assert fetched == args.tasks, fetched
            start = time.perf_counter()
            selected = sum(1 for _ in client.list_tasks("bench", select=["id", "state"]))
            listing_select = time.perf_counter() - start
            assert selected == args.tasks
            rss = peak_rss_mb(server.pid)
            client.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        rate = args.tasks / elapsed
        ratio = server_cpu / client_cpu
        print(
            f"{args.tasks:,} tasks through the azure-batch SDK (create_tasks, default concurrency)"
        )
        print(
            f"  accepted: {rate:,.0f} tasks/s in {elapsed:.1f} s "
            f"(target >= 5,000/s: {'MET' if rate >= 5000 else 'MISSED'})"
        )
        print(
            f"  CPU: emulator {server_cpu:.1f} s, client {client_cpu:.1f} s, ratio {ratio:.2f} "
            f"(target <= 1: {'MET' if ratio <= 1 else 'MISSED'}); its engine {engine_cpu:.1f} s"
        )
        verdict = "MET" if rss <= 300 else "MISSED"
        print(f"  emulator peak RSS: {rss:.0f} MB (target <= 300 MB: {verdict})")
        print(
            f"  list_tasks (paged, 1,000 a page): {listing:.1f} s for {listed:,} "
            f"(target <= 10 s: {'MET' if listing <= 10 else 'MISSED'}); "
            f"CPU: emulator {listing_cpu[0]:.1f} s, client {listing_cpu[1]:.1f} s"
        )
        verdict = "MET" if raw_listing <= 10 else "MISSED"
        print(
            f"  the same pages as raw HTTP through the SDK's pipeline, no models: "
            f"{raw_listing:.1f} s for {fetched:,} "
            f"(emulator-bound listing, target <= 10 s: {verdict}); "
            f"CPU: emulator {raw_cpu[0]:.1f} s, client {raw_cpu[1]:.1f} s"
        )
        models, models_cpu = listing - raw_listing, listing_cpu[1] - raw_cpu[1]
        print(
            f"  so the SDK's client-side model building is {models:.1f} s of list_tasks' "
            f"{listing:.1f} s ({models / listing:.0%}; client CPU {models_cpu:.1f} s)"
        )
        print(f"  list_tasks with $select=id,state: {listing_select:.1f} s")


if __name__ == "__main__":
    main()
