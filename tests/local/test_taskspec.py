"""A wire task checked without the model (the common shape) gives exactly what the model
gives, and anything else still meets the model."""

from __future__ import annotations

import random
from typing import Any

import pytest

from batchflow.backends.local import taskspec
from batchflow.exceptions import BackendError

JOB: dict[str, Any] = {"id": "j", "poolInfo": {"poolId": "p"}}


def through_the_model(task: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(taskspec, "_plain", lambda task: False)
        try:
            return taskspec.check_task(task, JOB)
        except BackendError as exc:
            return (exc.code, str(exc))


def checked(task: Any) -> Any:
    try:
        return taskspec.check_task(task, JOB)
    except BackendError as exc:
        return (exc.code, str(exc))


def cases() -> list[Any]:
    rng = random.Random(7)
    ids: list[Any] = ["t1", "a-b_C", "x" * 64, "x" * 65, "", "bad id", "é", 7, None]
    commands: list[Any] = [
        "/bin/true",
        "",
        " ",
        3,
        None,
        "echo 'é'",
        '/bin/sh -c "echo \\"quoted\\" \\\\ back\nslash\ttab \u2603"',
    ]
    settings: list[Any] = [
        [],
        [{"name": "A", "value": "1"}],
        [{"name": "Ü", "value": 'a "b" \\ c'}, {"name": "B", "value": ""}],
        [{"name": "A"}],
        [{"name": "", "value": "1"}],
        [{"name": "A", "value": None}],
        [{"name": "A", "value": 1}],
        [{"name": "A", "value": "1", "extra": 2}],
        ["A=1"],
        {"A": "1"},
    ]
    found: list[Any] = []
    for _ in range(600):
        task: dict[str, Any] = {}
        if rng.random() < 0.95:
            task["id"] = rng.choice(ids)
        if rng.random() < 0.95:
            task["commandLine"] = rng.choice(commands)
        if rng.random() < 0.5:
            task["environmentSettings"] = rng.choice(settings)
        if rng.random() < 0.1:
            task["displayName"] = "shown"
        if rng.random() < 0.05:
            task["command_line"] = "/bin/true"
        found.append(task)
    return found


def test_the_plain_path_agrees_with_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = 0
    for task in cases():
        plain += taskspec._plain(task)
        assert checked(task) == through_the_model(task, monkeypatch), task
    assert 50 < plain < 550  # both paths were exercised


def test_a_job_task_id_clash_is_still_refused() -> None:
    job = {**JOB, "jobManagerTask": {"id": "boss", "commandLine": "/bin/true"}}
    with pytest.raises(BackendError) as clash:
        taskspec.check_task({"id": "BOSS", "commandLine": "/bin/true"}, job)
    assert clash.value.code == "TaskIdSameAsJobManagerTask"
