"""A job of plain settings is checked without building its pydantic model (batchflow.rules).

What `plain_job` accepts the model must accept, and a job that skipped the model must read,
validate and export exactly as one that went through it: the old path (every `Job` built
through `JobSpec`) is the reference these tests compare the new one with.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import batchflow.dsl
from batchflow.dsl import Job
from batchflow.exceptions import BatchflowError
from batchflow.model import JobSpec
from batchflow.rules import plain_job
from batchflow.validation import validate
from tests.conftest import REPO

# Wire values of each job setting: valid, valid only after the model's coercion, invalid.
VALUES: dict[str, list[Any]] = {
    "id": ["j", "a" * 64, "a" * 65, "", "bad id", "j.1", "ß", 5, None],
    "displayName": ["x", "x" * 1024, "x" * 1025, "", 3, None],
    "priority": [0, -1000, 1000, 1001, -1001, True, 1.0, "5", None],
    "allowTaskPreemption": [True, False, 1, "true", None],
    "usesTaskDependencies": [True, False, 0, "no", None],
    "maxParallelTasks": [-1, 1, 7, 0, -2, True, 2.0, "3", None],
    "constraints": [
        {},
        {"maxWallClockTime": "1h"},
        {"maxWallClockTime": "PT1H"},
        {"maxWallClockTime": "P10675199DT2H48M5.4775807S"},
        {"maxWallClockTime": "pt1h"},
        {"maxWallClockTime": "bogus"},
        {"maxWallClockTime": ""},
        {"maxWallClockTime": -5},
        {"maxWallClockTime": 0},
        {"maxWallClockTime": 3600},
        {"maxWallClockTime": 1.5},
        {"maxWallClockTime": float("nan")},
        {"maxWallClockTime": float("inf")},
        {"maxWallClockTime": timedelta(hours=1)},
        {"maxWallClockTime": timedelta(seconds=-1)},
        {"maxWallClockTime": True},
        {"maxWallClockTime": None},
        {"maxWallClockTime": ["PT1H"]},
        {"maxTaskRetryCount": -1},
        {"maxTaskRetryCount": 3},
        {"maxTaskRetryCount": -2},
        {"maxTaskRetryCount": True},
        {"maxTaskRetryCount": "3"},
        {"maxWallClockTime": "2d", "maxTaskRetryCount": 2},
        {"retentionTime": "PT1H"},
        {"max_wall_clock_time": "PT1H"},
        "PT1H",
        None,
    ],
    "commonEnvironmentSettings": [
        [],
        [{"name": "A", "value": "1"}],
        [{"name": "A", "value": "1"}, {"name": "B", "value": ""}],
        [{"name": "", "value": "1"}],
        [{"name": "A"}],
        [{"name": "A", "value": None}],
        [{"name": "A", "value": 1}],
        [{"name": "A", "value": "1", "x": 1}],
        ["A=1"],
        "A=1",
        None,
    ],
    "metadata": [[], [{"name": "k", "value": "v"}], [{"name": "", "value": "v"}], {"k": "v"}],
    "poolInfo": [
        {"poolId": "p"},
        {"poolId": ""},
        {},
        {"poolId": None},
        {"poolId": 5},
        {"autoPoolSpecification": {}},
        {"poolId": "p", "x": 1},
        "p",
        None,
    ],
    "onAllTasksComplete": ["terminatejob", "TerminateJob", "noAction", "bogus", "", 1, None],
    "onTaskFailure": ["performexitoptionsjobaction", "noaction", "NoAction", "x", None],
    "jobManagerTask": [{"id": "m", "commandLine": "/bin/true"}],
    "jobPreparationTask": [{"commandLine": "/bin/true"}],
    "tasks": [[]],
    "unknownField": [1],
}


def model_accepts(wire: dict[str, Any]) -> bool:
    try:
        JobSpec.model_validate(wire)
    except ValidationError:
        return False
    return True


def wires() -> list[dict[str, Any]]:
    """Each value of each setting alone, then many random combinations (a fixed seed)."""
    out: list[dict[str, Any]] = []
    for key, values in VALUES.items():
        for value in values:
            out.append({"id": "j", key: value} if key != "id" else {"id": value})
    rng = random.Random(12)
    keys = list(VALUES)
    for _ in range(3000):
        chosen = rng.sample(keys, rng.randint(1, 6))
        wire = {"id": rng.choice(VALUES["id"][:3])}
        for key in chosen:  # mostly the first two values (valid as they are), to mix many
            values = VALUES[key]
            wire[key] = rng.choice(values[:2] if rng.random() < 0.8 else values)
        out.append(wire)
    out.append({"displayName": "no id"})
    return out


def test_what_plain_job_accepts_the_model_accepts() -> None:
    accepted = 0
    for wire in wires():
        if plain_job(wire):
            accepted += 1
            assert model_accepts(wire), wire
    assert accepted > 500  # the plain path is the common one, not a path never taken


@pytest.mark.parametrize(
    "wire",
    [
        {"id": "j"},
        {"id": "j", "poolInfo": {"poolId": "p"}, "onAllTasksComplete": "terminatejob"},
        {
            "id": "job-1",
            "displayName": "Job",
            "priority": -5,
            "allowTaskPreemption": False,
            "usesTaskDependencies": True,
            "maxParallelTasks": -1,
            "constraints": {"maxWallClockTime": "24h", "maxTaskRetryCount": 3},
            "commonEnvironmentSettings": [{"name": "A", "value": "1"}],
            "metadata": [{"name": "owner", "value": "me"}],
            "poolInfo": {"poolId": "p"},
            "onAllTasksComplete": "TerminateJob",
            "onTaskFailure": "performExitOptionsJobAction",
        },
    ],
)
def test_what_the_dsl_writes_is_plain(wire: dict[str, Any]) -> None:
    assert plain_job(wire)


@pytest.mark.parametrize(
    "wire",
    [
        {"id": "j", "jobManagerTask": {"id": "m", "commandLine": "/bin/true"}},
        {"id": "j", "priority": "5"},  # valid once coerced: the model decides
        {"id": "j", "constraints": {"maxWallClockTime": "bogus"}},
        {"id": "j", "unknownField": 1},
        {"displayName": "no id"},
    ],
)
def test_anything_else_goes_to_the_model(wire: dict[str, Any]) -> None:
    assert not plain_job(wire)


# -- the DSL: the plain path against the old one (every Job through the model) ---------

OPTIONS: dict[str, list[Any]] = {
    "id": ["job-1", "J_2", "bad id", "x" * 65],
    "pool": [None, "p", "", 5],
    "priority": [None, 0, 1000, 1001, True],
    "max_task_retry_count": [None, 0, 3, -1, -2],
    "max_wall_clock_time": [None, "24h", "PT1H", timedelta(hours=2), 90, "bogus", -1],
    "max_parallel_tasks": [None, -1, 0, 4],
    "on_all_tasks_complete": [None, "terminatejob", "noAction", "nope"],
    "on_task_failure": [None, "performExitOptionsJobAction", "noaction", "x"],
    "env": [None, {"A": 1}, {"": "x"}],
    "metadata": [None, {"k": "v"}, {"": "v"}],
    "display_name": [None, "d", "x" * 1025],
    "allow_task_preemption": [None, True, "yes"],
    "uses_task_dependencies": [None, False, True],
    "preparation": [None, {"commandLine": "/bin/true"}],
}


def job_options() -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = [{"id": "job-1"}]
    for key, values in OPTIONS.items():
        out.extend({"id": "job-1", key: v} for v in values if key != "id")
    for _ in range(400):  # mostly the first two values (valid), to mix many settings
        out.append(
            {
                key: rng.choice(values[:2] if rng.random() < 0.85 else values)
                for key, values in OPTIONS.items()
            }
        )
    return out


def outcome(options: dict[str, Any], tasks: int) -> tuple[Any, bool]:
    """What a flow of these job settings gives: its error, or what validate, export and
    the settings say (the model built last, so validation ran without it if it could);
    and whether the job was checked without its model."""
    options = dict(options)
    job_id = options.pop("id")
    try:
        job = Job(job_id, **options)
    except BatchflowError as exc:
        return ("error", type(exc).__name__, str(exc)), False
    first = job.task("first", "/bin/bash -c 'echo hi > out.txt'", retries=2)
    if tasks > 1:
        job.task(
            "second",
            "/bin/echo $HOME",
            after=first,
            wall_clock="1h",
            exit_conditions={"default": {"jobAction": "terminate"}},
        )
    if tasks > 2:
        job.task("third", "/bin/true", after=[first], inputs=["missing.txt"])
    problems = [p.to_dict() for p in validate(job, file="flow.py")]
    settings = dict(job.settings())
    plain = job._spec is None
    return (problems, settings, job.uses_task_dependencies, job.to_wire(), job.spec), plain


def test_a_plain_job_reads_validates_and_exports_as_through_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = list(itertools.product(job_options(), (0, 1, 3)))
    new = [outcome(options, tasks) for options, tasks in cases]
    monkeypatch.setattr(batchflow.dsl, "plain_job", lambda wire: False)
    old = [outcome(options, tasks) for options, tasks in cases]
    for (options, tasks), mine, reference in zip(cases, new, old, strict=True):
        assert mine[0] == reference[0], (options, tasks)
    assert sum(plain for _, plain in new) > 100  # the new path was taken...
    assert not any(plain for _, plain in old)  # ...and compared with the old one
    assert sum(result[0] == "error" for result, _ in new) > 100  # bad settings were tried too


def test_a_job_of_plain_settings_builds_its_model_only_when_asked() -> None:
    job = Job("j", pool="p", max_wall_clock_time="24h", on_all_tasks_complete="terminatejob")
    assert job._spec is None
    assert job.settings()["constraints"] == {"maxWallClockTime": "P1D"}
    assert job.spec.pool_info is not None and job.spec.pool_info.pool_id == "p"
    assert job._spec is not None
    assert Job("j", job_manager={"id": "m", "commandLine": "/bin/true"})._spec is not None


@pytest.mark.parametrize("plain", [True, False])
def test_default_pool_on_either_path(plain: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not plain:
        monkeypatch.setattr(batchflow.dsl, "plain_job", lambda wire: False)
    job = Job("j")
    job.default_pool("p")
    assert (job._spec is None) is plain
    assert job.spec.pool_info is not None and job.spec.pool_info.pool_id == "p"
    named = Job("k", pool="mine")
    named.default_pool("p")
    assert named.settings()["poolInfo"] == {"poolId": "mine"}


def test_validate_of_a_plain_flow_never_imports_pydantic(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        "from batchflow import Job\n\n"
        'job = Job("plain", pool="p", on_all_tasks_complete="terminatejob", '
        'max_task_retry_count=2, max_wall_clock_time="1d", env={"A": "1"})\n'
        "for i in range(20):\n"
        '    job.task(f"t{i:03d}", "/bin/echo task", wall_clock="1m", retries=1)\n'
        'job.map("m-{i}", "/bin/true", i=range(3), after=job.tasks[0], wall_clock="1m")\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "batchflow", "validate", str(flow)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "plain  23 tasks  2 levels  0 errors  0 warnings" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "batchflow.validation" in imported  # the check ran, and -X importtime saw it
    assert not [name for name in imported if name.startswith("pydantic")]
