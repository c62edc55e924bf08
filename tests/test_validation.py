"""Rules that span tasks and jobs, and the lint warnings: a failing and a passing case each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchflow import Job
from batchflow.exceptions import FlowInvalid
from batchflow.loader import load
from batchflow.validation import Problem, check, validate

SAS = "https://acct.blob.core.windows.net/out?sv=2024&sig=abc"


def t(id: str, *after: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "commandLine": "/bin/true",
        "constraints": {"maxWallClockTime": "PT1M"},
        **fields,
    }
    if after:
        out["dependsOn"] = {"taskIds": list(after)}
    return out


def job(tasks: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": "j",
        "poolInfo": {"poolId": "p"},
        "onAllTasksComplete": "terminatejob",
        "usesTaskDependencies": True,
        **fields,
        "tasks": tasks,
    }


def problems(tmp_path: Path, data: Any) -> list[Problem]:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(data))
    return load(path).validate()


def codes(found: list[Problem], severity: str = "error") -> set[str]:
    return {p.code for p in found if p.severity == severity}


# (rule, failing flow, error code, field, passing flow)
RULES = [
    ("duplicate id", job([t("a"), t("a")]), "duplicate-id", "id", job([t("a"), t("b")])),
    (
        "duplicate id ignoring case",
        job([t("Frame"), t("frame")]),
        "duplicate-id",
        "id",
        job([t("Frame"), t("frame2")]),
    ),
    (
        "unknown dependency",
        job([t("a"), t("b", "c")]),
        "unknown-dependency",
        "dependsOn.taskIds[0]",
        job([t("a"), t("b", "a")]),
    ),
    (
        "dependency matched ignoring case",
        job([t("a"), t("b", "X")]),
        "unknown-dependency",
        "dependsOn.taskIds[0]",
        job([t("A"), t("b", "a")]),
    ),
    (
        "self dependency",
        job([t("a", "a")]),
        "self-dependency",
        "dependsOn.taskIds[0]",
        job([t("a")]),
    ),
    (
        "cycle",
        job([t("a", "c"), t("b", "a"), t("c", "b")]),
        "cycle",
        "dependsOn",
        job([t("a"), t("b", "a"), t("c", "b")]),
    ),
    (
        "range with missing ids",
        job([t("1"), t("2"), t("m", dependsOn={"taskIdRanges": [{"start": 1, "end": 3}]})]),
        "unknown-dependency",
        "dependsOn.taskIdRanges[0]",
        job([t("1"), t("2"), t("m", dependsOn={"taskIdRanges": [{"start": 1, "end": 2}]})]),
    ),
    (
        "dependencies without usesTaskDependencies",
        job([t("a"), t("b", "a")], usesTaskDependencies=False),
        "TaskDependenciesNotSpecifiedOnJob",
        "usesTaskDependencies",
        job([t("a"), t("b", "a")], usesTaskDependencies=True),
    ),
    (
        "dependencyAction without usesTaskDependencies",
        job(
            [t("a", exitConditions={"default": {"dependencyAction": "satisfy"}})],
            usesTaskDependencies=False,
        ),
        "InvalidPropertyValue",
        "exitConditions",
        job([t("a", exitConditions={"default": {"dependencyAction": "satisfy"}})]),
    ),
    (
        "jobAction without performExitOptionsJobAction",
        job([t("a", exitConditions={"default": {"jobAction": "terminate"}})]),
        "InvalidPropertyValue",
        "exitConditions",
        job(
            [t("a", exitConditions={"default": {"jobAction": "terminate"}})],
            onTaskFailure="performExitOptionsJobAction",
        ),
    ),
    (
        "task id equals the preparation task's",
        job([t("jobpreparation")], jobPreparationTask={"commandLine": "true"}),
        "reserved-id",
        "id",
        job([t("prep-2")], jobPreparationTask={"commandLine": "true"}),
    ),
    (
        "task id equals the release task's",
        job(
            [t("cleanup")],
            jobPreparationTask={"commandLine": "true"},
            jobReleaseTask={"id": "cleanup", "commandLine": "true"},
        ),
        "reserved-id",
        "id",
        job(
            [t("work")],
            jobPreparationTask={"commandLine": "true"},
            jobReleaseTask={"id": "cleanup", "commandLine": "true"},
        ),
    ),
    (
        "taskIds over 64,000 characters",
        job(
            [t(f"{'x' * 60}{i:04d}") for i in range(1100)]
            + [t("m", *[f"{'x' * 60}{i:04d}" for i in range(1100)])]
        ),
        "TaskDependencyListTooLong",
        "dependsOn.taskIds",
        job(
            [t(f"{'x' * 60}{i:04d}") for i in range(900)]
            + [t("m", *[f"{'x' * 60}{i:04d}" for i in range(900)])]
        ),
    ),
    (
        "field error inside a job file",
        job([t("a", requiredSlots=0)]),
        "greater_than_equal",
        "requiredSlots",
        job([t("a", requiredSlots=2)]),
    ),
]


@pytest.mark.parametrize(("rule", "bad", "code", "field", "good"), RULES, ids=[r[0] for r in RULES])
def test_rule(tmp_path: Path, rule: str, bad: Any, code: str, field: str, good: Any) -> None:
    found = problems(tmp_path, bad)
    hits = [p for p in found if p.code == code and p.severity == "error"]
    assert hits, f"{rule}: no {code} in {[str(p) for p in found]}"
    assert hits[0].field == field
    assert hits[0].job_id == "j"
    assert codes(problems(tmp_path, good)) == set()


def test_cycle_is_named(tmp_path: Path) -> None:
    found = problems(tmp_path, job([t("a", "c"), t("b", "a"), t("c", "b")]))
    cycle = next(p for p in found if p.code == "cycle")
    assert (
        "a -> b -> c -> a" in cycle.message
        or "b -> c -> a -> b" in cycle.message
        or ("c -> a -> b -> c" in cycle.message)
    )


def test_all_errors_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    data = job([t("a b"), t("c", "zz"), t("d", constraints={"retentionTime": "PT7D"}), t("d")])
    found = [p for p in problems(tmp_path, data) if p.severity == "error"]
    assert {p.code for p in found} >= {"value_error", "unknown-dependency", "duplicate-id"}
    assert len(found) >= 4
    assert all(p.file and p.file.endswith("flow.json") for p in found)


def test_unknown_dependency_suggests_the_close_id(tmp_path: Path) -> None:
    found = problems(tmp_path, job([t("process"), t("report", "procss")]))
    assert "did you mean 'process'?" in next(
        p.message for p in found if p.code == "unknown-dependency"
    )


def test_errors_carry_the_json_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text(
        '[\n  {"id": "ok", "commandLine": "x"},\n  {"id": "bad", "commandLine": "x",\n'
        '   "requiredSlots": 0}\n]\n'
    )
    error = next(p for p in load(path).validate() if p.severity == "error")
    assert (error.task_id, error.field, error.line) == ("bad", "requiredSlots", 3)


# Lint warnings: (rule, flow, warning code, passing flow)
WARNINGS = [
    ("no wall clock", job([{"id": "a", "commandLine": "x"}]), "no-wall-clock", job([t("a")])),
    (
        "retries without wall clock",
        job([{"id": "a", "commandLine": "x", "constraints": {"maxTaskRetryCount": 2}}]),
        "retries-without-wall-clock",
        job([t("a", constraints={"maxTaskRetryCount": 2, "maxWallClockTime": "PT1H"})]),
    ),
    (
        "no onAllTasksComplete",
        {k: v for k, v in job([t("a")]).items() if k != "onAllTasksComplete"},
        "no-on-all-tasks-complete",
        job([t("a")]),
    ),
    (
        "stderr.txt pattern in the working dir",
        job(
            [
                t(
                    "a",
                    outputFiles=[
                        {
                            "filePattern": "stderr.txt",
                            "destination": {"container": {"containerUrl": SAS}},
                            "uploadOptions": {"uploadCondition": "taskFailure"},
                        }
                    ],
                )
            ]
        ),
        "pattern-in-task-dir",
        job(
            [
                t(
                    "a",
                    outputFiles=[
                        {
                            "filePattern": "../stderr.txt",
                            "destination": {"container": {"containerUrl": SAS}},
                            "uploadOptions": {"uploadCondition": "taskFailure"},
                        }
                    ],
                )
            ]
        ),
    ),
    (
        "container URL without signature",
        job(
            [
                t(
                    "a",
                    outputFiles=[
                        {
                            "filePattern": "*.png",
                            "destination": {"container": {"containerUrl": "https://a/c?sv=..."}},
                            "uploadOptions": {"uploadCondition": "taskSuccess"},
                        }
                    ],
                )
            ]
        ),
        "no-write-credential",
        job(
            [
                t(
                    "a",
                    outputFiles=[
                        {
                            "filePattern": "*.png",
                            "destination": {"container": {"containerUrl": SAS}},
                            "uploadOptions": {"uploadCondition": "taskSuccess"},
                        }
                    ],
                )
            ]
        ),
    ),
    (
        "script not staged",
        job([t("a", commandLine="/bin/bash -c 'python3 process.py'")]),
        "missing-script",
        job(
            [
                t(
                    "a",
                    commandLine="/bin/bash -c 'python3 process.py'",
                    resourceFiles=[{"httpUrl": "https://x/process.py", "filePath": "process.py"}],
                )
            ]
        ),
    ),
    (
        "downloaded files a dependent cannot see",
        job(
            [
                t("get", commandLine="/bin/bash -c 'wget https://x/d.zip && unzip d.zip'"),
                t("use", "get", commandLine="/bin/bash -c 'ls'"),
            ]
        ),
        "no-handoff",
        job(
            [
                t(
                    "get",
                    commandLine="/bin/bash -c 'wget -P $AZ_BATCH_NODE_SHARED_DIR https://x/d.zip'",
                ),
                t("use", "get", commandLine="/bin/bash -c 'ls'"),
            ]
        ),
    ),
]


@pytest.mark.parametrize(("rule", "bad", "code", "good"), WARNINGS, ids=[w[0] for w in WARNINGS])
def test_warning(tmp_path: Path, rule: str, bad: Any, code: str, good: Any) -> None:
    found = problems(tmp_path, bad)
    assert code in codes(found, "warning"), f"{rule}: {[str(p) for p in found]}"
    assert codes(found) == set(), "a warning is not an error"
    assert code not in codes(problems(tmp_path, good), "warning")


def test_warnings_of_one_kind_are_folded(tmp_path: Path) -> None:
    data = job([{"id": f"a{i}", "commandLine": "python3 run.py"} for i in range(50)])
    found = [p for p in problems(tmp_path, data) if p.code == "missing-script"]
    assert len(found) == 3
    assert "and 47 more like this" in found[-1].message


def test_check_raises_with_every_problem() -> None:
    flow = Job("j", on_all_tasks_complete="terminatejob")
    flow.task("a", "x", wall_clock="1m")
    flow.task("b", "x", wall_clock="1m")
    flow.tasks[1].dep_ids = ("nope",)  # as a hand-edited definition could
    with pytest.raises(FlowInvalid) as info:
        check(flow)
    assert [p.code for p in info.value.problems if p.severity == "error"] == ["unknown-dependency"]
    assert info.value.task_id == "b"


def test_a_clean_flow_has_no_problem() -> None:
    flow = Job("j", pool="p", on_all_tasks_complete="terminatejob")
    a = flow.task("a", "x", wall_clock="1m")
    flow.task("b", "x", after=a, wall_clock="1m")
    assert validate(flow) == []


def test_a_task_without_a_wall_clock_gets_one_warning_about_it() -> None:
    job = Job("walls", pool="p", on_all_tasks_complete="terminatejob")
    job.task("plain", "/bin/true")
    job.task("retried", "/bin/true", retries=2)
    job.task("bounded", "/bin/true", retries=2, wall_clock="5m")
    found = [(p.code, p.task_id) for p in validate(job) if "wall-clock" in p.code]
    assert found == [("no-wall-clock", "plain"), ("retries-without-wall-clock", "retried")]
    # job-level retries with no per-task settings: the retries warning only, for every task
    everyone = Job("all", pool="p", on_all_tasks_complete="terminatejob", max_task_retry_count=1)
    everyone.map("t-{i}", "/bin/true", i=range(3))
    codes = [p.code for p in validate(everyone) if "wall-clock" in p.code]
    assert codes == ["retries-without-wall-clock"]
