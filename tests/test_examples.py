"""The tutorial's workloads in examples/ are valid flows, and their inputs exist."""

from __future__ import annotations

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
