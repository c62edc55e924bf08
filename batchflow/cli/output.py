"""How commands speak: tables and lines for people, JSON for machines, errors on stderr.

Every expected failure becomes one line per problem on stderr and exit code 2; an
unexpected one (a bug) is one line and exit code 3, with the traceback only under
`--debug`. Everything printed passes through `redact`, so no secret reaches a terminal.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import typer

from batchflow.redact import redact

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class OutputFormat(enum.StrEnum):
    """`--output`: text for people, json for machines."""

    text = "text"
    json = "json"


def error_line(text: str) -> None:
    """One line on stderr, secrets removed."""
    typer.echo(redact(text), err=True)


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout."""
    typer.echo(redact(json.dumps(data, indent=2, default=str)))


#: ANSI codes by style name, for the few lines printed without rich (its import costs a
#: command a twentieth of a second).
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "cyan": "36", "grey": "38;5;237"}


def colour() -> bool:
    """Whether stdout takes ANSI styles: a terminal, no NO_COLOR, not TERM=dumb."""
    return (
        sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM", "") != "dumb"
    )


def styled(text: str, style: str, *, on: bool) -> str:
    """`text` in `style` (a name of `_ANSI`) when `on`, else as it is."""
    return f"\033[{_ANSI[style]}m{text}\033[0m" if on and text else text


def bar(done: int, total: int, *, failed: bool, width: int = 40, on: bool = False) -> str:
    """A progress bar of `width` cells, as rich draws one: `━` done, `╸` a half cell, the
    rest `━` in grey on a terminal (spaces elsewhere); red once a task failed, green when
    complete, cyan before."""
    halves = (width * 2 * done) // (total or 1)
    full, half = divmod(min(halves, width * 2), 2)
    colour_name = "red" if failed else ("green" if done >= total else "cyan")
    filled = styled("━" * full + ("╸" if half else ""), colour_name, on=on)
    rest = width - full - half
    return filled + (styled("━" * rest, "grey", on=on) if on else " " * rest)


def console(stderr: bool = False) -> Any:
    """A rich console (imported on first use, so `--help` does not pay for it)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped or captured output gets room for a whole line instead of rich's 80 columns.
    width = None if stream.isatty() else 160
    return Console(file=stream, highlight=False, width=width)


#: What the CLI adds to a backend's error, by Batch error code: the command that helps.
#: (Backends name no command or flag; this table is the one place that does.)
ADVICE = {
    "JobNotFound": "`batchflow jobs` lists the jobs",
    "TaskNotFound": "`batchflow tasks {job}` lists its tasks",
    "TaskDefinitionChanged": "submit with --replace to run it again with the new definition",
    "JobDefinitionChanged": "submit with --replace to update it, or delete the job first",
    "JobCompleted": "to run it again: `batchflow delete {job}`, then submit; or use another job id",
    "JobBeingTerminated": "wait until it is completed, then delete it or use another job id",
    "JobBeingDeleted": "wait until it is gone, then submit again",
    "TaskNotCompleted": "wait until it has completed",
    "TaskSucceeded": "only failed tasks run again; submit with --replace to change a task",
    "TaskFilesCleanedup": "its directory went after the task's retentionTime",
    "TaskDependenciesNotSpecifiedOnJob": "use another job id, or delete the job first",
    "PropertyCannotBeUpdated": "delete the job first, or use another job id",
    "RequiredSlotsUnavailable": "submit with --slots {requiredSlots} or more",
    "PoolNotSpecified": "name one in the flow (pool=, poolInfo.poolId) or with --pool-id",
}
#: Exit code of a backend error by kind: bad input (2) except when the backend itself
#: cannot answer (3).
EXIT_BY_KIND = {"unavailable": EXIT_INTERNAL}


def backend_error_line(exc: Any) -> str:
    """`error: <message> (<advice>)` for a `BackendError`."""
    advice = ADVICE.get(exc.code)
    text = f"error: {exc}"
    if advice:
        names = {"job": exc.job_id or "JOB", "task": exc.task_id or "TASK", **dict(exc.values)}
        text += f" ({advice.format(**names)})"
    return text


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """Turn batchflow errors into stderr lines and exit codes; never a traceback."""
    from batchflow.exceptions import BackendError, BatchflowError, FlowInvalid, StateError

    try:
        yield
    except typer.Exit:
        raise
    except BackendError as exc:
        error_line(backend_error_line(exc))
        raise typer.Exit(EXIT_BY_KIND.get(exc.kind, EXIT_BAD_INPUT)) from None
    except StateError as exc:
        advice = " (choose another with --state-dir or BATCHFLOW_STATE_DIR)"
        error_line(f"error: {exc}{advice if exc.elsewhere else ''}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except FlowInvalid as exc:
        errors = [p for p in exc.problems if p.severity == "error"]
        for problem in errors:
            error_line(f"error: {problem}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except BatchflowError as exc:
        error_line(f"error: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        error_line("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        raise typer.Exit(EXIT_OK) from None
    except Exception as exc:
        if os.environ.get("BATCHFLOW_DEBUG"):
            traceback.print_exc()
        error_line(
            f"internal error: {type(exc).__name__}: {exc} "
            "(this is a bug in batchflow; rerun with --debug for the traceback)"
        )
        raise typer.Exit(EXIT_INTERNAL) from None
