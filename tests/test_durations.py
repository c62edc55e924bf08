"""Durations: ISO 8601 as Batch takes it, friendly forms as people write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batchflow.durations import INFINITE, format_duration, parse_duration, to_wire_duration


@pytest.mark.parametrize(
    ("given", "wire"),
    [
        ("PT1H", "PT1H"),  # valid ISO is kept exactly as written
        ("P7D", "P7D"),
        ("PT24H", "PT24H"),
        ("PT01H30M00S", "PT01H30M00S"),  # SDK 15 sends leading zeros
        ("P1DT2H", "P1DT2H"),
        ("PT0.5S", "PT0.5S"),
        ("1h", "PT1H"),  # friendly forms become canonical ISO
        ("90m", "PT1H30M"),
        ("1h30m", "PT1H30M"),
        ("2d", "P2D"),
        ("24h", "P1D"),
        ("45s", "PT45S"),
        ("1.5h", "PT1H30M"),
        ("500ms", "PT0.5S"),
        ("1 hour", "PT1H"),
        ("10 minutes", "PT10M"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(0), "PT0S"),
        (3600, "PT1H"),
        (INFINITE, INFINITE),
    ],
)
def test_wire_form(given: str | timedelta | int, wire: str) -> None:
    assert to_wire_duration(given) == wire


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("PT1H", timedelta(hours=1)),
        ("P1Y", timedelta(days=365)),  # the service counts a year as 365 days
        ("P1M", timedelta(days=30)),  # and a month as 30
        ("P1W", timedelta(days=7)),
        ("P3Y6M4DT12H30M5S", timedelta(days=1279, hours=12, minutes=30, seconds=5)),
        ("PT1,5S", timedelta(seconds=1.5)),
        (INFINITE, timedelta.max),
    ],
)
def test_parse(given: str, expected: timedelta) -> None:
    assert parse_duration(given) == expected


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("PT7D", "did you mean 'P7D'?"),  # the tutorial's retentionTime
        ("PT1D2H", "did you mean 'P1DT2H'?"),
        ("P1H", "did you mean 'PT1H'?"),
        ("pt1h", "did you mean 'PT1H'?"),
        ("P", "write e.g."),
        ("PT", "write e.g."),
        ("P1DT", "write e.g."),
        ("soon", "write e.g."),
        ("", "write e.g."),
        ("1 fortnight", "write e.g."),
    ],
)
def test_invalid_strings_name_the_fix(given: str, hint: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 duration") as info:
        to_wire_duration(given)
    assert hint in str(info.value)


def test_days_after_t_explains_why() -> None:
    with pytest.raises(ValueError, match="days come before the T"):
        parse_duration("PT7D")


@pytest.mark.parametrize("given", [-1, timedelta(seconds=-5), True])
def test_negative_and_non_durations_are_rejected(given: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (float("nan"), "nan is not a duration"),
        (float("inf"), "inf is too long"),
        (1e300, r"1e\+300 is too long"),
        ("9" * 400 + "h", "is too long"),
    ],
)
def test_numbers_no_timedelta_holds_are_a_value_error(given: object, why: str) -> None:
    # ValueError (which the model and the DSL report on the field), not OverflowError
    with pytest.raises(ValueError, match=why):
        to_wire_duration(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "P1DT2H3M4S"),
        (timedelta(seconds=0.25), "PT0.25S"),
        (timedelta.max, INFINITE),
    ],
)
def test_format(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
