"""Exit options, results and retries of a finished attempt (docs/semantics.md 2.3, 2.6)."""

from __future__ import annotations

from typing import Any

import pytest

from batchflow.backends.local.outcome import (
    Outcome,
    exit_options,
    failure_exit_code,
    retries_left,
)

FAILED = failure_exit_code(1)
UPLOAD = {"category": "usererror", "code": "FileUploadMiscError", "message": "x"}
PRE = {"category": "usererror", "code": "BlobNotFound", "message": "x"}

CONDITIONS: dict[str, Any] = {
    "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy", "jobAction": "none"}}],
    "exitCodeRanges": [{"start": 10, "end": 20, "exitOptions": {"jobAction": "disable"}}],
    "preProcessingError": {"dependencyAction": "satisfy"},
    "fileUploadError": {"jobAction": "none"},
    "default": {"jobAction": "none", "dependencyAction": "block"},
}


@pytest.mark.parametrize(
    ("conditions", "result", "expected"),
    [
        # a clean exit 0: satisfy, no job action; `default` does not apply to it
        (CONDITIONS, Outcome(0), (True, "none")),
        # no exit conditions at all: a failure blocks and would terminate the job
        (None, Outcome(1, FAILED), (False, "terminate")),
        # an exact exit code mapping wins
        (CONDITIONS, Outcome(3, failure_exit_code(3)), (True, "none")),
        # a range mapping; dependencyAction falls back to block for a failure
        (CONDITIONS, Outcome(15, failure_exit_code(15)), (False, "disable")),
        # anything else non-zero goes to `default`
        (CONDITIONS, Outcome(7, failure_exit_code(7)), (False, "none")),
        # a pre-processing error uses preProcessingError (jobAction defaults to terminate)
        (CONDITIONS, Outcome(None, PRE, pre_processing=True), (True, "terminate")),
        # an upload error after exit 0 uses fileUploadError
        (CONDITIONS, Outcome(0, UPLOAD, upload=True), (False, "none")),
        # an exit code mapping takes precedence over an upload error
        (CONDITIONS, Outcome(3, UPLOAD, upload=True), (True, "none")),
        # enum values are compared case-insensitively
        ({"default": {"dependencyAction": "Satisfy"}}, Outcome(2, FAILED), (True, "terminate")),
    ],
)
def test_exit_options(
    conditions: dict[str, Any] | None, result: Outcome, expected: tuple[bool, str]
) -> None:
    assert exit_options(conditions, result) == expected


@pytest.mark.parametrize(
    ("exit_code", "done", "limit", "expected"),
    [
        (1, 0, 0, False),  # no retries by default
        (1, 0, 2, True),
        (1, 2, 2, False),  # N retries = N + 1 attempts
        (1, 50, -1, True),  # -1 retries forever
        (0, 0, 3, False),  # success is never retried
        (None, 0, 3, False),  # no exit code (pre-processing, launch error): never retried
    ],
)
def test_retries_left(exit_code: int | None, done: int, limit: int, expected: bool) -> None:
    assert retries_left(exit_code, done, limit) is expected


def test_result_is_success_only_for_a_clean_exit_zero() -> None:
    assert Outcome(0).succeeded
    assert not Outcome(0, UPLOAD, upload=True).succeeded
    assert not Outcome(None, PRE, pre_processing=True).succeeded
