"""How an attempt ends: retry or complete, result, failureInfo and exit options.

Batch's rules (docs/semantics.md 2.3-2.6), as pure functions the engine calls once per
finished attempt:

- a non-zero exit code is retried while retries remain (`maxTaskRetryCount`, -1 forever);
  pre-processing errors, upload errors, launch errors and timeouts are not retried;
- the final attempt is matched against `exitConditions` (exit code, then ranges, then
  upload error, then `default`; a pre-processing error uses `preProcessingError`) to give
  the effective `dependencyAction` and `jobAction`, which default to satisfy/none for a
  clean exit 0 and block/terminate otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from batchflow.redact import redact

__all__ = [
    "Outcome",
    "exit_options",
    "failure_exit_code",
    "launch_failure",
    "retries_left",
    "task_ended",
    "timed_out",
]


class Outcome(NamedTuple):
    """The end of a task: its exit code (None if the process never ran) and failure."""

    exit_code: int | None
    failure: dict[str, Any] | None = None
    #: The failure came from fetching resource files (no exit code, never retried).
    pre_processing: bool = False
    #: The failure came from uploading output files (exit code kept, never retried).
    upload: bool = False

    @property
    def succeeded(self) -> bool:
        """Batch's result: success only for exit code 0 without any failure."""
        return self.failure is None and self.exit_code == 0


def _info(category: str, code: str, message: str, **details: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"category": category, "code": code, "message": redact(message)}
    if details:
        info["details"] = [{"name": k, "value": redact(str(v))} for k, v in details.items()]
    return info


def failure_exit_code(exit_code: int) -> dict[str, Any]:
    """failureInfo of a task whose process exited non-zero."""
    return _info(
        "usererror",
        "FailureExitCode",
        f"The task process exited with an unexpected exit code ({exit_code})",
    )


def launch_failure(program: str, reason: str) -> dict[str, Any]:
    """failureInfo of a command that could not be started (no such program, not runnable)."""
    return _info(
        "usererror",
        "CommandProgramNotFound",
        f"The command program '{program}' could not be started: {reason}",
    )


def timed_out(max_wall_clock: str) -> dict[str, Any]:
    """failureInfo of a task killed at its maxWallClockTime."""
    return _info(
        "servererror",
        "TaskEnded",
        f"The task ran longer than its maxWallClockTime ({max_wall_clock}) and was ended",
    )


def task_ended(reason: str = "Task Was Ended by User Request") -> dict[str, Any]:
    """failureInfo of a running task ended because its job was terminated, as Batch reports."""
    return _info("usererror", "TaskEnded", reason)


def retries_left(exit_code: int | None, retries_done: int, max_retries: int) -> bool:
    """Whether a non-zero exit earns another attempt (-1 = retry forever)."""
    if exit_code is None or exit_code == 0:
        return False
    return max_retries == -1 or retries_done < max_retries


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def exit_options(conditions: Mapping[str, Any] | None, outcome: Outcome) -> tuple[bool, str]:
    """(dependencies satisfied?, jobAction) for the final attempt, per section 3.8."""
    conditions = conditions or {}
    code = outcome.exit_code
    opts: Mapping[str, Any] | None = None
    if outcome.pre_processing:
        opts = conditions.get("preProcessingError") or conditions.get("default")
    else:
        if code is not None:
            for item in conditions.get("exitCodes") or ():
                if item.get("code") == code:
                    opts = item.get("exitOptions") or {}
                    break
            if opts is None:
                for item in conditions.get("exitCodeRanges") or ():
                    if item.get("start", 0) <= code <= item.get("end", -1):
                        opts = item.get("exitOptions") or {}
                        break
        if opts is None and outcome.upload:
            opts = conditions.get("fileUploadError") or conditions.get("default")
        elif opts is None and not outcome.succeeded:
            opts = conditions.get("default")
    opts = opts or {}
    clean = outcome.succeeded
    dependency = _lower(opts.get("dependencyAction")) or ("satisfy" if clean else "block")
    job_action = _lower(opts.get("jobAction")) or ("none" if clean else "terminate")
    return dependency == "satisfy", job_action
