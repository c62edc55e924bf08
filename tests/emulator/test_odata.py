"""The `$filter` parser: Batch's subset, with a clear refusal for the rest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchflow.backends.local.filters import Compare, Logical, Not, StartsWith
from batchflow.emulator.errors import EmulatorError
from batchflow.emulator.odata import parse_filter, parse_select


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("state eq 'completed'", Compare("state", "eq", "completed")),
        # what the SDK's docs show for failures
        (
            "executionInfo/exitCode ne 0 and state eq 'completed'",
            Logical(
                "and",
                (Compare("executionInfo/exitCode", "ne", 0), Compare("state", "eq", "completed")),
            ),
        ),
        # precedence: and binds tighter than or; not applies to its operand
        (
            "id eq 'a' or id eq 'b' and not state eq 'active'",
            Logical(
                "or",
                (
                    Compare("id", "eq", "a"),
                    Logical(
                        "and", (Compare("id", "eq", "b"), Not(Compare("state", "eq", "active")))
                    ),
                ),
            ),
        ),
        (
            "(id eq 'a' or id eq 'b') and startswith(id,'a')",
            Logical(
                "and",
                (
                    Logical("or", (Compare("id", "eq", "a"), Compare("id", "eq", "b"))),
                    StartsWith("id", "a"),
                ),
            ),
        ),
        ("id eq 'it''s'", Compare("id", "eq", "it's")),  # '' escapes a quote
        ("executionInfo/exitCode lt -1", Compare("executionInfo/exitCode", "lt", -1)),
        (
            "creationTime ge datetime'2024-10-24T01:15:18Z'",
            Compare("creationTime", "ge", datetime(2024, 10, 24, 1, 15, 18, tzinfo=UTC)),
        ),
        (
            "stateTransitionTime LT 2024-10-24T01:15:18.5Z",
            Compare("stateTransitionTime", "lt", datetime(2024, 10, 24, 1, 15, 18, 500000, UTC)),
        ),
        ("executionInfo/endTime eq null", Compare("executionInfo/endTime", "eq", None)),
        ("  ", None),
    ],
)
def test_parses_batchs_subset(text: str, tree: object) -> None:
    assert parse_filter(text) == tree


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("state eq", "expected a literal"),
        ("state = 'a'", "unexpected '='"),
        ("state eq 'a' extra", "unexpected 'extra'"),
        ("(state eq 'a'", "expected ')'"),
        ("endswith(id,'a')", "'endswith' is not supported"),
        ("startswith(id, 3)", "string literal"),
        ("creationTime gt datetime'yesterday'", "not a datetime"),
        ("creationTime gt 2024-01-01T00:00:00", "no time zone"),
        ("state has 'a'", "expected an operator"),
        ("id eq 'unterminated", "unexpected"),
    ],
)
def test_refuses_the_rest_by_name(text: str, reason: str) -> None:
    with pytest.raises(EmulatorError) as refused:
        parse_filter(text)
    assert refused.value.code == "InvalidQueryParameterValue"
    assert reason in dict(refused.value.values)["Reason"]
    assert dict(refused.value.values)["QueryParameterValue"] == text


def test_select() -> None:
    assert parse_select("id,state, executionInfo") == ("id", "state", "executionInfo")
    assert parse_select(None) is None
    with pytest.raises(EmulatorError):
        parse_select("id;drop")
