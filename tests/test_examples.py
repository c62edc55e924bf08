"""The tutorial's workloads in examples/ are valid flows, their inputs exist, and the demo runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batchflow.loader import load

from .conftest import REPO

EXAMPLES = REPO / "examples"
FLOWS = [
    "hello.py",
    "input_files.py",
    "bulk_frames.py",
    "output_files.py",
    "pipeline.py",
    "flaky.py",
]


def test_every_flow_in_examples_is_listed() -> None:
    found = {p.name for p in EXAMPLES.glob("*.py")} - {"demo.py"}
    assert found == set(FLOWS)


@pytest.mark.parametrize("name", FLOWS)
def test_example_is_valid_without_warnings(name: str) -> None:
    problems = load(EXAMPLES / name).validate()
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("name", FLOWS)
def test_example_inputs_exist(name: str) -> None:
    for job in load(EXAMPLES / name).jobs:
        for task in job.tasks:
            for item in task.inputs:
                assert (EXAMPLES / item).exists(), f"{name}: {task.id} input {item} is missing"


def test_pipeline_merge_waits_for_the_numbered_range() -> None:
    job = load(EXAMPLES / "pipeline.py").job()
    merge = job.get("merge-results")
    assert merge is not None
    assert merge.to_wire()["dependsOn"] == {"taskIdRanges": [{"start": 1, "end": 100}]}


def test_flaky_example_fixes_the_tutorials_retention_time() -> None:
    task = load(EXAMPLES / "flaky.py").job().tasks[0]
    assert task.to_wire()["constraints"] == {
        "maxWallClockTime": "PT1H",
        "retentionTime": "P7D",
        "maxTaskRetryCount": 3,
    }


def test_make_demo_runs_the_examples_and_shows_a_readable_summary(tmp_path: Path) -> None:
    # What `make demo` runs: it must end well on a fresh machine and stay short enough to read.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("BATCHFLOW_STATE_DIR", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pipeline-job  completed (AllTasksComplete)  104 tasks: 104 succeeded" in out
    assert "results/pipeline-job/generate-report/report.txt" in out
    assert "1000,500500.0" in out
    assert "more files under results/pipeline-job/" in out
    assert len(out.splitlines()) < 120, out
    assert list(tmp_path.iterdir()) == [], "the demo leaves its state behind"
