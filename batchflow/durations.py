"""Durations as Azure Batch takes them (ISO 8601) and as people write them (`1h`, `90m`).

Batch's wire format is the ISO 8601 duration `PnDTnHnMnS`; `Y` and `M` before the `T`
count 365 and 30 days, as the service normalises them. People also write `1h30m`,
`90m`, `2d` or pass a `timedelta`; those are turned into canonical ISO 8601. A string
that is already valid ISO 8601 is kept exactly as written, so a JSON file exports unchanged.

>>> to_wire_duration("90m")
'PT1H30M'
>>> parse_duration("P1DT2H")
datetime.timedelta(days=1, seconds=7200)
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

__all__ = ["INFINITE", "format_duration", "iso_seconds", "parse_duration", "to_wire_duration"]

#: What Batch returns for "no limit" (.NET TimeSpan.MaxValue).
INFINITE = "P10675199DT2H48M5.4775807S"

_NUM = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(
    rf"P(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?"
)
_FRIENDLY_PART = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*"
    r"(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w)(?![a-z])\s*",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ISO_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def iso_seconds(text: str) -> float | None:
    """Seconds in an ISO 8601 duration (`PT15M`, `P1DT2H`), or None if `text` is not one."""
    match = _ISO.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    total = 0.0
    for value, unit in zip(match.groups(), _ISO_SECONDS, strict=True):
        if value is not None:
            total += float(value.replace(",", ".")) * unit
    return total


def _friendly_seconds(text: str) -> float | None:
    pos, total, found = 0, 0.0, False
    while pos < len(text):
        match = _FRIENDLY_PART.match(text, pos)
        if match is None:
            return None
        unit = match.group(2).lower()
        key = "ms" if unit.startswith("mil") or unit == "ms" else unit[0]
        total += float(match.group(1)) * _UNIT_SECONDS[key]
        pos, found = match.end(), True
    return total if found else None


def _suggest(text: str) -> str | None:
    """A corrected spelling for a near-miss ISO 8601 duration, if there is an obvious one."""
    upper = text.upper()
    if upper != text and iso_seconds(upper) is not None:
        return upper
    # Days (or weeks, years) written after the T, e.g. 'PT7D' -> 'P7D', 'PT1D2H' -> 'P1DT2H'.
    match = re.fullmatch(r"PT((?:\d+[YWD])+)(.*)", upper)
    if match:
        candidate = f"P{match.group(1)}" + (f"T{match.group(2)}" if match.group(2) else "")
        if iso_seconds(candidate) is not None:
            return candidate
    # Hours or seconds written without the T, e.g. 'P1H' -> 'PT1H'.
    if upper.startswith("P") and "T" not in upper and iso_seconds("PT" + upper[1:]) is not None:
        return "PT" + upper[1:]
    seconds = _friendly_seconds(text)
    if seconds is not None:
        return format_duration(timedelta(seconds=seconds))
    return None


@lru_cache(maxsize=256)
def _parse_text(text: str) -> tuple[float, bool]:
    """Seconds in `text` and whether it was already ISO 8601; ValueError if neither form."""
    stripped = text.strip()
    seconds = iso_seconds(stripped)
    if seconds is not None:
        return seconds, stripped == text
    if not stripped.upper().startswith("P"):
        seconds = _friendly_seconds(stripped)
        if seconds is not None:
            return seconds, False
    hint = _suggest(stripped)
    fix = f" (did you mean '{hint}'?)" if hint else " (write e.g. 'PT1H30M', 'P7D' or '90m')"
    why = ""
    if re.fullmatch(r"PT.*\d+[YWD].*", stripped.upper()):
        why = ": days come before the T in ISO 8601"
    raise ValueError(f"'{text}' is not an ISO 8601 duration{why}{fix}")


def parse_duration(value: str | timedelta | float) -> timedelta:
    """A duration from ISO 8601, a friendly string (`1h30m`), a timedelta or seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        if value == INFINITE:
            return timedelta.max
        seconds = _parse_text(value)[0]
    else:
        raise ValueError(f"{value!r} is not a duration")
    if seconds != seconds:  # NaN
        raise ValueError(f"{value!r} is not a duration")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative; a duration must be zero or more")
    return _timedelta(seconds, value)


def _timedelta(seconds: float, value: object) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # infinity, or past timedelta's 999,999,999 days
        raise ValueError(
            f"{value!r} is too long; the longest duration Batch takes is {INFINITE}"
        ) from None


def format_duration(delta: timedelta) -> str:
    """Canonical ISO 8601 for a timedelta: `P1DT2H30M`, `PT45S`, `PT0S`."""
    if delta >= timedelta(days=10675199):
        return INFINITE
    if delta < timedelta(0):
        raise ValueError(f"{delta} is negative; a duration must be zero or more")
    days = delta.days
    seconds = delta.seconds
    micros = delta.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if secs or micros:
        frac = f".{micros:06d}".rstrip("0") if micros else ""
        clock += f"{secs}{frac}S"
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"


def to_wire_duration(value: str | timedelta | float) -> str:
    """The ISO 8601 string to send to Batch; valid ISO input is returned unchanged."""
    if isinstance(value, str) and value != INFINITE:
        seconds, is_iso = _parse_text(value)
        if is_iso:
            return value
        return format_duration(_timedelta(seconds, value))
    if value == INFINITE:
        return INFINITE
    return format_duration(parse_duration(value))
