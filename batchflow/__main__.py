"""`python -m batchflow` is the `batchflow` command."""

from batchflow.cli import entry

entry()
