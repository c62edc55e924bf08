"""Conditional requests on jobs, tasks and pools: `If-Match`, `If-None-Match`,
`If-Modified-Since`, `If-Unmodified-Since` (batch-semantics.md 5.7).

An entity's `eTag` and `lastModified` are the service's (wire.py); a condition that does
not hold is Batch's `ConditionNotMet` (the edge answers 412 on a write, 304 on a read).
The check reads the entity just before the operation: a write that lands between the
two is not seen, a window this single-machine service accepts.

    >>> check({"eTag": "0x1", "lastModified": "2024-01-01T00:00:00.0000000Z"},
    ...       Conditions(if_match='"0x1"'))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchflow.exceptions import BackendError

__all__ = ["Conditions", "check"]


@dataclass(frozen=True)
class Conditions:
    """The conditions of one request; entity tags as sent (quoted or not, `*`)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None

    def __bool__(self) -> bool:
        return any(
            v is not None
            for v in (
                self.if_match,
                self.if_none_match,
                self.if_modified_since,
                self.if_unmodified_since,
            )
        )


def _tags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/").strip('"') for t in header.split(",") if t.strip()}


def _modified(entity: dict[str, Any]) -> datetime:
    # Whole seconds: HTTP dates have no fraction, so a client that echoes Last-Modified
    # must find the entity unmodified since then.
    moment = datetime.fromisoformat(entity["lastModified"][:19] + "+00:00")
    return moment


def check(entity: dict[str, Any] | None, conditions: Conditions) -> None:
    """Raise `ConditionNotMet` unless `conditions` hold for `entity` (None: it does not
    exist, which only `If-Match: *` and a concrete `If-Match` refuse)."""
    if not conditions:
        return
    tag = None if entity is None else str(entity["eTag"])
    failed = False
    if conditions.if_match is not None:
        tags = _tags(conditions.if_match)
        failed = tag is None or ("*" not in tags and tag not in tags)
    if conditions.if_none_match is not None and tag is not None:
        tags = _tags(conditions.if_none_match)
        failed = failed or "*" in tags or tag in tags
    if entity is not None:
        modified = _modified(entity)
        since = conditions.if_modified_since
        if since is not None and modified <= since:
            failed = True
        until = conditions.if_unmodified_since
        if until is not None and modified > until:
            failed = True
    if failed:
        raise BackendError(
            "The condition specified using HTTP conditional header(s) is not met.",
            code="ConditionNotMet",
        )
