"""One definition each: what an id may hold, how a path may not escape, "did you mean"."""

from __future__ import annotations

import pytest

from batchflow import model
from batchflow.infra.rules import POOL_ID, relative_path_problem
from batchflow.names import did_you_mean, is_id, path_problem, task_number


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("frame-0001", True),
        ("a_b-C9", True),
        ("x" * 64, True),
        ("x" * 65, False),  # too long
        ("", False),  # empty
        ("frame 1", False),  # space
        ("t-0.5", False),  # a float's dot
        ("naïve", False),  # non-ASCII letters
    ],
)
def test_one_id_rule_for_tasks_jobs_and_pools(text: str, valid: bool) -> None:
    assert is_id(text) is valid
    assert bool(model._ID.fullmatch(text)) is valid
    assert bool(POOL_ID.match(text)) is valid


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a.txt", None),
        ("a/../b", None),  # stays inside
        ("d/", None),
        ("", "is empty"),
        ("..", "climbs out of its directory with '..'"),
        ("../x", "climbs out of its directory with '..'"),
        ("a/../../x", "climbs out of its directory with '..'"),
        ("a\\..\\..\\x", "climbs out of its directory with '..'"),  # either separator
        ("/etc/passwd", "is not a relative path"),
        ("C:\\x", "is not a relative path"),
        ("a:b", None),  # a legal file name on Linux, not a drive
    ],
)
def test_one_path_rule_for_tasks_and_stack_settings(path: str, problem: str | None) -> None:
    assert path_problem(path) == problem
    stack = relative_path_problem(path)
    assert (stack is None) is (problem is None)
    if problem is None:
        assert model.check_relative_path(path) == path
    else:
        with pytest.raises(ValueError):
            model.check_relative_path(path)


def test_did_you_mean() -> None:
    assert did_you_mean("procss", ["process", "merge"]) == "process"
    assert did_you_mean("zzz", ["process", "merge"]) is None
    assert did_you_mean("maxWallClock", ["maxWallClockTime"], cutoff=0.7) == "maxWallClockTime"


@pytest.mark.parametrize(
    ("task_id", "number"),
    [
        ("7", 7),
        ("007", 7),
        ("-5", -5),
        ("2147483647", 2147483647),
        ("2147483648", None),
        ("-2147483648", -2147483648),
        ("-", None),
        ("5a", None),
        ("frame-7", None),
        ("²", None),
        ("٣", None),
    ],
)
def test_one_rule_says_which_ids_a_task_id_range_takes(task_id: str, number: int | None) -> None:
    from batchflow.backends.azure.backend import _names
    from batchflow.backends.local.catalog import number_of
    from batchflow.graph import numeric_index

    assert task_number(task_id) == number
    # validation, the local service and the Azure backend's settled check agree
    assert number_of(task_id) == number
    assert numeric_index([task_id]) == ([] if number is None else [(number, 0)])
    assert _names(task_id)[1:] == (() if number is None else (number,))
