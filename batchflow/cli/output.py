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


def console(stderr: bool = False) -> Any:
    """A rich console (imported on first use, so `--help` does not pay for it)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped or captured output gets room for a whole line instead of rich's 80 columns.
    width = None if stream.isatty() else 160
    return Console(file=stream, highlight=False, width=width)


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """Turn batchflow errors into stderr lines and exit codes; never a traceback."""
    from batchflow.exceptions import BatchflowError, FlowInvalid

    try:
        yield
    except typer.Exit:
        raise
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
