"""`python -m batchflow` is the `batchflow` command."""

from batchflow.cli.main import run

run()
