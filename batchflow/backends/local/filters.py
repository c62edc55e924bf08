"""Filters on listings (Batch's OData `$filter`), compiled into the store's SQL.

A client edge parses the text (the emulator's `odata.py`) into the small tree below; the
service decides which property of which listing can be filtered, with which operators,
and how it maps onto a column (batch-semantics.md 5.6). Anything it cannot map is
Batch's `InvalidQueryParameterValue` naming the property, never ignored.

Comparisons follow OData's null rules: `x ne 0` holds where `x` is absent, `x gt 0`
does not. Enum values (states, results) compare case-insensitively, as Batch's do.

    >>> sql, params = task_filter(Compare("state", "eq", "Completed"))
    >>> sql, params
    ('state IS ?', [3])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchflow.backends.local.store import FAILURE, STATE_NAMES, SUCCESS
from batchflow.exceptions import BackendError

__all__ = [
    "Compare",
    "Filter",
    "Logical",
    "Not",
    "StartsWith",
    "job_filter",
    "name_prefix",
    "pool_filter",
    "task_filter",
]

#: A literal: text, a number, a boolean, a moment, or null.
Value = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class Compare:
    """`path op value`; `op` is one of eq, ne, gt, ge, lt, le."""

    path: str
    op: str
    value: Value


@dataclass(frozen=True)
class StartsWith:
    """`startswith(path, 'prefix')`."""

    path: str
    prefix: str


@dataclass(frozen=True)
class Logical:
    """`a and b`, `a or b` (`op` is "and" or "or")."""

    op: str
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """`not (a)`."""

    item: Filter


Filter = Compare | StartsWith | Logical | Not

_SQL_OPS = {"eq": "IS", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ORDERED = ("eq", "ne", "gt", "ge", "lt", "le")


def _refuse(expression: str, reason: str) -> BackendError:
    return BackendError(
        f"$filter: {reason}",
        code="InvalidQueryParameterValue",
        values=(
            ("QueryParameterName", "$filter"),
            ("QueryParameterValue", expression),
            ("Reason", reason),
        ),
    )


@dataclass(frozen=True)
class _Field:
    """How one filterable property maps onto SQL: its column expression, the operators
    it takes, and how a literal becomes the column's value."""

    column: str
    ops: tuple[str, ...]
    convert: Callable[[str, Value], Any]
    prefix: bool = False  # startswith allowed


def _text(path: str, value: Value) -> Any:
    if not isinstance(value, str):
        raise _refuse(path, f"{path} compares with a string literal, not {value!r}")
    return value


def _lower_text(path: str, value: Value) -> Any:
    return _text(path, value).lower()


def _integer(path: str, value: Value) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(path, f"{path} compares with an integer, not {value!r}")
    return value


def _moment(path: str, value: Value) -> Any:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _refuse(path, f"{path} compares with a datetime literal, not {value!r}")
    return value.timestamp()


def _enum(names: dict[str, Any]) -> Callable[[str, Value], Any]:
    def convert(path: str, value: Value) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or value.lower() not in names:
            raise _refuse(path, f"{path} is one of {', '.join(names)}, not {value!r}")
        return names[value.lower()]

    return convert


_TIMES = ("creationTime", "stateTransitionTime", "lastModified")

TASK_FIELDS: dict[str, _Field] = {
    "id": _Field("id", _ORDERED, _text, prefix=True),  # the column compares NOCASE
    "state": _Field("state", ("eq", "ne"), _enum({n: i for i, n in enumerate(STATE_NAMES)})),
    "creationTime": _Field("creation_time", _ORDERED, _moment),
    "stateTransitionTime": _Field("state_time", _ORDERED, _moment),
    "lastModified": _Field("modified", _ORDERED, _moment),
    "executionInfo/startTime": _Field("start", _ORDERED, _moment),
    "executionInfo/endTime": _Field("end", _ORDERED, _moment),
    "executionInfo/exitCode": _Field("exit_code", _ORDERED, _integer),
    "executionInfo/result": _Field(
        "result", ("eq", "ne"), _enum({"success": SUCCESS, "failure": FAILURE})
    ),
    "executionInfo/retryCount": _Field("retries", _ORDERED, _integer),
    "executionInfo/requeueCount": _Field("requeues", _ORDERED, _integer),
    "requiredSlots": _Field("coalesce(slots, 1)", _ORDERED, _integer),
    "nodeInfo/nodeId": _Field("node", ("eq", "ne"), _text, prefix=True),
}

_JOB_STATES = {
    s: s
    for s in (
        "active",
        "disabling",
        "disabled",
        "enabling",
        "terminating",
        "completed",
        "deleting",
    )
}
JOB_FIELDS: dict[str, _Field] = {
    "id": _Field("key", _ORDERED, _lower_text, prefix=True),
    "state": _Field("state", ("eq", "ne"), _enum(_JOB_STATES)),
    "creationTime": _Field("creation_time", _ORDERED, _moment),
    "stateTransitionTime": _Field("state_time", _ORDERED, _moment),
    "lastModified": _Field("modified", _ORDERED, _moment),
    "executionInfo/startTime": _Field("creation_time", _ORDERED, _moment),
    "executionInfo/endTime": _Field("end_time", _ORDERED, _moment),
    "executionInfo/poolId": _Field(
        "json_extract(spec, '$.poolInfo.poolId')", _ORDERED, _text, prefix=True
    ),
    "priority": _Field("coalesce(json_extract(spec, '$.priority'), 0)", _ORDERED, _integer),
}

POOL_FIELDS: dict[str, _Field] = {
    "id": _Field("key", _ORDERED, _lower_text, prefix=True),
    "state": _Field("state", ("eq", "ne"), _enum({"active": "active", "deleting": "deleting"})),
    "allocationState": _Field(
        "allocation_state",
        ("eq", "ne"),
        _enum({s: s for s in ("steady", "resizing", "stopping")}),
    ),
    "creationTime": _Field("creation_time", _ORDERED, _moment),
    "stateTransitionTime": _Field("state_time", _ORDERED, _moment),
    "lastModified": _Field("modified", _ORDERED, _moment),
    "vmSize": _Field("lower(json_extract(spec, '$.vmSize'))", _ORDERED, _lower_text),
}


def _compile(node: Filter, fields: dict[str, _Field], what: str) -> tuple[str, list[Any]]:
    if isinstance(node, Logical):
        parts = [_compile(item, fields, what) for item in node.items]
        joiner = " AND " if node.op == "and" else " OR "
        return (
            "(" + joiner.join(sql for sql, _ in parts) + ")",
            [p for _, params in parts for p in params],
        )
    if isinstance(node, Not):
        sql, params = _compile(node.item, fields, what)
        return f"NOT coalesce({sql}, 0)", params
    field = fields.get(node.path)
    if field is None:
        raise _refuse(
            node.path,
            f"{what} cannot be filtered on '{node.path}' (it can on {', '.join(fields)})",
        )
    if isinstance(node, StartsWith):
        if not field.prefix:
            raise _refuse(node.path, f"startswith is not supported on {node.path}")
        prefix = field.convert(node.path, node.prefix)
        if field.column == "id":  # NOCASE column: a range the index can use
            return "(id >= ? AND id < ?)", [prefix, prefix + "\uffff"]
        return f"substr({field.column}, 1, ?) = ?", [len(prefix), prefix]
    if node.op not in field.ops:
        raise _refuse(
            node.path,
            f"{node.path} takes {', '.join(field.ops)}, not {node.op}",
        )
    value = field.convert(node.path, node.value)
    if value is None and node.op not in ("eq", "ne"):
        raise _refuse(node.path, f"{node.path} {node.op} null is not a comparison")
    return f"{field.column} {_SQL_OPS[node.op]} ?", [value]


def task_filter(node: Filter) -> tuple[str, list[Any]]:
    """SQL (a WHERE condition on the tasks table) and its parameters."""
    return _compile(node, TASK_FIELDS, "tasks")


def job_filter(node: Filter) -> tuple[str, list[Any]]:
    """SQL (a WHERE condition on the jobs table) and its parameters."""
    return _compile(node, JOB_FIELDS, "jobs")


def pool_filter(node: Filter) -> tuple[str, list[Any]]:
    """SQL (a WHERE condition on the pools table) and its parameters."""
    return _compile(node, POOL_FIELDS, "pools")


def name_prefix(node: Filter | None) -> str:
    """The prefix of a file listing's filter: Batch filters files only with
    `startswith(name, '...')`."""
    if node is None:
        return ""
    if isinstance(node, StartsWith) and node.path == "name":
        return node.prefix
    raise _refuse(
        getattr(node, "path", "$filter"),
        "files can only be filtered with startswith(name, '...')",
    )
