"""The bounds and allowed values of a job's own settings, without pydantic.

The flow model (`batchflow.model.JobSpec`) enforces these values and words the errors;
`plain_job` lets `Job(...)` skip building that model (importing pydantic costs a command
more than the rest of `validate`) when every setting is of a kind the model takes as it
is. It never reports a problem itself: anything it is not sure of goes to the model, so
every message is still the model's. `tests/test_rules.py` checks, over many settings,
that whatever `plain_job` accepts the model accepts too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from batchflow.durations import to_wire_duration
from batchflow.names import check_id

__all__ = [
    "DISPLAY_NAME_MAX",
    "ON_ALL_TASKS_COMPLETE",
    "ON_TASK_FAILURE",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "RETRY_COUNT_MIN",
    "check_parallel",
    "plain_job",
]

ON_ALL_TASKS_COMPLETE = ("noAction", "terminateJob")
ON_TASK_FAILURE = ("noAction", "performExitOptionsJobAction")
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
#: Retries: -1 (for ever), 0 or more.
RETRY_COUNT_MIN = -1
DISPLAY_NAME_MAX = 1024


def check_parallel(value: int) -> int:
    """maxParallelTasks: -1 (no limit) or a number above 0."""
    if value == -1 or value > 0:
        return value
    raise ValueError(f"{value} is not allowed; use -1 (no limit) or a number above 0")


def _passes(check: Callable[[Any], Any], value: Any) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def _int(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and low <= v and (high is None or v <= high)


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], bool]:
    lower = frozenset(a.lower() for a in allowed)
    return lambda v: type(v) is str and v.lower() in lower


def _text(v: Any) -> bool:
    return type(v) is str


def _duration(v: Any) -> bool:
    # What the model's Duration does with it; any doubt (an error of any kind): the model
    # decides, and says why.
    try:
        return type(v) in (str, int, float, timedelta) and type(to_wire_duration(v)) is str
    except Exception:
        return False


def _name_values(v: Any) -> bool:
    return type(v) is list and all(
        type(item) is dict
        and item.keys() == {"name", "value"}
        and type(item["name"]) is str
        and item["name"] != ""
        and type(item["value"]) is str
        for item in v
    )


_CONSTRAINTS: dict[str, Callable[[Any], bool]] = {
    "maxWallClockTime": _duration,
    "maxTaskRetryCount": _int(RETRY_COUNT_MIN),
}

# Wire name -> the values the model takes unchanged. The job's manager, preparation and
# release tasks are not here: a job with one of them always goes through the model.
_PLAIN: dict[str, Callable[[Any], bool]] = {
    "id": lambda v: type(v) is str and _passes(check_id, v),
    "displayName": lambda v: type(v) is str and len(v) <= DISPLAY_NAME_MAX,
    "priority": _int(PRIORITY_MIN, PRIORITY_MAX),
    "allowTaskPreemption": lambda v: type(v) is bool,
    "usesTaskDependencies": lambda v: type(v) is bool,
    "maxParallelTasks": lambda v: type(v) is int and _passes(check_parallel, v),
    "constraints": lambda v: (
        type(v) is dict and all(k in _CONSTRAINTS and _CONSTRAINTS[k](x) for k, x in v.items())
    ),
    "commonEnvironmentSettings": _name_values,
    "metadata": _name_values,
    "poolInfo": lambda v: type(v) is dict and v.keys() == {"poolId"} and _text(v["poolId"]),
    "onAllTasksComplete": _one_of(ON_ALL_TASKS_COMPLETE),
    "onTaskFailure": _one_of(ON_TASK_FAILURE),
}


def plain_job(wire: dict[str, Any]) -> bool:
    """Whether the model would take every one of these job settings (Batch's camelCase
    names) as given: then it can be built later, when something needs it. False means
    "not sure" (the model decides), never "invalid"."""
    return "id" in wire and all(key in _PLAIN and _PLAIN[key](v) for key, v in wire.items())
