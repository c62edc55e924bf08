"""The real Azure CLI runs the tutorial's `az batch` commands against the emulator.

azure-cli is large (about 730 MB, a few minutes to install): it is installed once into
its own virtual environment, `~/.cache/batchflow-azure-cli` (kept across checkouts;
`BATCHFLOW_AZ` may name an existing `az` instead). If it cannot be installed the test
fails, it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchflow.emulator import serve
from tests.emulator.conftest import wait_for

VENV = Path.home() / ".cache" / "batchflow-azure-cli"


@pytest.fixture(scope="session")
def az() -> Path:
    """The `az` executable (installed on first use)."""
    given = os.environ.get("BATCHFLOW_AZ")
    if given:
        return Path(given)
    binary = VENV / "bin" / "az"
    if not binary.exists():
        VENV.parent.mkdir(parents=True, exist_ok=True)
        steps = [
            [sys.executable, "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "pip"), "install", "--quiet", "azure-cli"],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(f"installing azure-cli failed: {done.stderr[-2000:]}")
    return binary


def test_the_tutorials_az_batch_commands(az: Path, tmp_path: Path) -> None:
    with serve(state_dir=tmp_path / "state") as batch:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHFLOW_"))}
        env.update(
            AZURE_CONFIG_DIR=str(tmp_path / "azure-config"),
            AZURE_CORE_COLLECT_TELEMETRY="false",
            AZURE_CORE_NO_COLOR="true",
        )
        account = [
            "--account-endpoint",
            batch.endpoint,
            "--account-name",
            batch.account_name,
            "--account-key",
            batch.account_key,
        ]

        def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [str(az), "batch", *args, *account, "--only-show-errors"],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                check=False,
            )
            if ok:
                assert done.returncode == 0, done.stderr
            return done

        run(
            "pool",
            "create",
            "--id",
            "my-compute-pool",
            "--vm-size",
            "standard_d2s_v3",
            "--target-dedicated-nodes",
            "1",
            "--image",
            "canonical:ubuntu-24_04-lts:server",
            "--node-agent-sku-id",
            "batch.node.ubuntu 24.04",
        )
        run("job", "create", "--id", "render-job-001", "--pool-id", "my-compute-pool")
        run(
            "job",
            "create",
            "--id",
            "data-processing-job",
            "--pool-id",
            "my-compute-pool",
            "--priority",
            "100",
            "--job-max-task-retry-count",
            "3",
            "--job-max-wall-clock-time",
            "PT24H",
        )
        job = json.loads(run("job", "show", "--job-id", "data-processing-job").stdout)
        assert (job["priority"], job["constraints"]["maxTaskRetryCount"]) == (100, 3)
        assert job["constraints"]["maxWallClockTime"] in ("1 day, 0:00:00", "P1D")
        run(
            "task",
            "create",
            "--job-id",
            "render-job-001",
            "--task-id",
            "task-001",
            "--command-line",
            "/bin/bash -c 'echo Hello from Azure Batch && hostname'",
        )
        tasks = [
            {"id": f"frame-{i:03d}", "commandLine": f"/bin/sh -c 'echo frame {i}'"}
            for i in range(1, 151)
        ]
        (tmp_path / "tasks.json").write_text(json.dumps(tasks))
        run("task", "create", "--job-id", "render-job-001", "--json-file", "tasks.json")

        def counts() -> dict[str, int]:
            shown = run("job", "task-counts", "show", "--job-id", "render-job-001").stdout
            return json.loads(shown)["taskCounts"]  # type: ignore[no-any-return]

        wait_for(lambda: counts()["succeeded"] == 151)
        listed = json.loads(
            run(
                "task",
                "list",
                "--job-id",
                "render-job-001",
                "--filter",
                "state eq 'completed'",
                "--query",
                "[].id",
            ).stdout
        )
        assert len(listed) == 151
        run(
            "task",
            "file",
            "download",
            "--job-id",
            "render-job-001",
            "--task-id",
            "task-001",
            "--file-path",
            "stdout.txt",
            "--destination",
            "./stdout.txt",
        )
        assert (tmp_path / "stdout.txt").read_text().startswith("Hello from Azure Batch\n")
        files = json.loads(
            run(
                "task", "file", "list", "--job-id", "render-job-001", "--task-id", "task-001"
            ).stdout
        )
        assert "stdout.txt" in {f["name"] for f in files}
        run("job", "set", "--job-id", "render-job-001", "--on-all-tasks-complete", "terminateJob")
        wait_for(
            lambda: (
                json.loads(run("job", "show", "--job-id", "render-job-001").stdout)["state"]
                == "completed"
            )
        )
        run("job", "stop", "--job-id", "data-processing-job")
        run("job", "delete", "--job-id", "render-job-001", "--yes")
        missing = run("job", "show", "--job-id", "no-such-job", ok=False)
        assert missing.returncode != 0 and "JobNotFound" in missing.stderr
