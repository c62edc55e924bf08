"""`python -m batchflow` is the `batchflow` command."""

from batchflow.cli import main

main()
