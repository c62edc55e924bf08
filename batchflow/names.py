"""Batch's rules for ids and relative paths, and the "did you mean" of every message.

One definition each, used by the flow model, the DSL, validation and the stack settings:

>>> is_id("frame-0001"), is_id("frame 1")
(True, False)
>>> path_problem("../x")
"climbs out of its directory with '..'"
>>> did_you_mean("procss", ["process", "merge"])
'process'
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Iterable

__all__ = [
    "ID",
    "ID_CHARS",
    "check_id",
    "did_you_mean",
    "is_id",
    "path_problem",
    "task_number",
]

#: The characters of an id, as a regex class: letters, digits, '-' and '_'.
ID_CHARS = "[A-Za-z0-9_-]"
#: Batch's id rule for jobs, tasks and pools: "up to 64 characters: any combination of
#: alphanumeric characters, hyphens and underscores" (compared case-insensitively).
ID = re.compile(ID_CHARS + "{1,64}")


def task_number(task_id: str) -> int | None:
    """The integer a task id stands for in `taskIdRanges`, else None: Batch puts a task in
    a range when its id parses as an int32 (`007` is 7, `-5` is -5; `5a` and `²` are not).

    >>> task_number("007"), task_number("-5"), task_number("frame-7"), task_number("2147483648")
    (7, -5, None, None)
    """
    digits = task_id[1:] if task_id[:1] == "-" else task_id
    if digits.isdigit() and digits.isascii() and len(digits) <= 10:
        value = int(task_id)
        if -(2**31) <= value <= 2**31 - 1:
            return value
    return None


def is_id(text: str) -> bool:
    """Whether `text` is a valid Batch id (str methods: faster than the regex per call)."""
    return (
        0 < len(text) <= 64
        and text.isascii()
        and text.replace("-", "a").replace("_", "a").isalnum()
    )


_BAD_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")


def check_id(value: str) -> str:
    """Batch's id rule: 1 to 64 letters, digits, hyphens and underscores (ValueError why)."""
    if ID.fullmatch(value):
        return value
    if not value:
        raise ValueError("an id must not be empty")
    if len(value) > 64:
        raise ValueError(f"'{value[:20]}...' is {len(value)} characters long; ids have at most 64")
    bad = _BAD_ID_CHAR.search(value)
    char = bad.group(0) if bad else "?"
    fix = re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")[:64] or "task-1"
    raise ValueError(
        f"'{value}' contains {char!r}; ids use only letters, digits, '-' and '_' "
        f"(did you mean '{fix}'?)"
    )


def path_problem(path: str) -> str | None:
    """Why `path` is not a relative path that stays in its directory (None when it is).

    `a/../b` stays inside and is fine; `..`, `../x` and absolute paths (`/x`, `\\x`, `C:\\x`)
    are not. Both separators count, as Batch accepts either.
    """
    if not path:
        return "is empty"
    if path.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\\\/]", path):
        return "is not a relative path"
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return "climbs out of its directory with '..'"
    return None


def did_you_mean(name: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known name closest to `name`, if one is close enough to suggest."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None
