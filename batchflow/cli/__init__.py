"""The `batchflow` command line: one module per command group, no business logic."""

from __future__ import annotations

import os
import sys


def entry() -> None:
    """Console-script entry point (`batchflow`, `python -m batchflow`).

    It imports the application itself, so a Ctrl-C at any moment, even while typer and
    the commands are still being imported, ends with one line and exit code 130, never a
    traceback.
    """
    try:
        from batchflow.cli.main import run

        run()
    except KeyboardInterrupt:
        try:
            sys.stderr.write("batchflow: interrupted\n")
            sys.stderr.flush()
        finally:
            os._exit(130)
