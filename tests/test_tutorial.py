"""The tutorial's JSON examples load and export unchanged, and its mistakes are caught."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from batchflow.exceptions import FlowInvalid
from batchflow.export import write_job
from batchflow.loader import load

from .conftest import TUTORIAL

FIXTURES = sorted(TUTORIAL.glob("*.json"))


def test_all_five_examples_are_fixtures() -> None:
    assert [p.name for p in FIXTURES] == [
        "analysis-task.json",
        "flaky-task.json",
        "merge-results.json",
        "pipeline.json",
        "tasks.json",
    ]


VALID = [p for p in FIXTURES if p.name not in ("flaky-task.json", "merge-results.json")]


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_loads_and_exports_unchanged(path: Path) -> None:
    original = json.loads(path.read_text())
    flow = load(path)
    out = io.StringIO()
    write_job(flow.job(), out, tasks_only=True)
    exported = json.loads(out.getvalue())
    expected = original if isinstance(original, list) else [original]
    assert exported == expected  # dict equality: modulo key order


@pytest.mark.parametrize("name", ["flaky-task.json", "merge-results.json"])
def test_the_wrong_examples_are_refused_by_export(name: str) -> None:
    with pytest.raises(FlowInvalid):
        load(TUTORIAL / name).check()


def test_the_merge_example_exports_unchanged_once_its_tasks_exist(tmp_path: Path) -> None:
    merge = json.loads((TUTORIAL / "merge-results.json").read_text())
    tasks = [{"id": str(i), "commandLine": "/bin/true"} for i in range(1, 101)] + [merge]
    path = tmp_path / "all.json"
    path.write_text(json.dumps(tasks))
    out = io.StringIO()
    write_job(load(path).job(), out, tasks_only=True)
    assert json.loads(out.getvalue())[-1] == merge


def test_the_flaky_example_keeps_its_valid_fields_for_the_other_checks() -> None:
    codes = {p.code for p in load(TUTORIAL / "flaky-task.json").validate()}
    assert "no-wall-clock" not in codes  # its maxWallClockTime PT1H was kept


def errors(path: Path) -> list[tuple[str | None, str | None, str]]:
    return [(p.task_id, p.field, p.message) for p in load(path).validate() if p.severity == "error"]


def test_flaky_task_retention_time_is_caught_with_the_fix() -> None:
    [(task, field, message)] = errors(TUTORIAL / "flaky-task.json")
    assert (task, field) == ("flaky-task", "constraints.retentionTime")
    assert "did you mean 'P7D'?" in message


def test_merge_range_naming_no_task_is_caught() -> None:
    [(task, field, message)] = errors(TUTORIAL / "merge-results.json")
    assert (task, field) == ("merge-results", "dependsOn.taskIdRanges[0]")
    assert "numeric" in message or "number" in message


def test_merge_range_is_fine_next_to_its_numbered_tasks(tmp_path: Path) -> None:
    merge = json.loads((TUTORIAL / "merge-results.json").read_text())
    tasks = [{"id": str(i), "commandLine": "/bin/true"} for i in range(1, 101)] + [merge]
    path = tmp_path / "all.json"
    path.write_text(json.dumps(tasks))
    assert errors(path) == []


def warnings(path: Path) -> set[tuple[str | None, str]]:
    return {(p.task_id, p.code) for p in load(path).validate() if p.severity == "warning"}


def test_stderr_pattern_in_the_working_directory_is_caught() -> None:
    found = [
        p
        for p in load(TUTORIAL / "analysis-task.json").validate()
        if p.code == "pattern-in-task-dir"
    ]
    assert found and "did you mean '../stderr.txt'?" in found[0].message
    assert found[0].field == "outputFiles[1].filePattern"


def test_pipeline_scripts_and_handoff_are_caught() -> None:
    found = warnings(TUTORIAL / "pipeline.json")
    assert ("process-data", "missing-script") in found
    assert ("process-data", "no-handoff") in found


def test_placeholder_sas_urls_are_caught() -> None:
    assert ("frame-001", "no-write-credential") in warnings(TUTORIAL / "tasks.json")
