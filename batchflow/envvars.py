"""Environment variables batchflow reads, named once (a light module: the engine imports it)."""

from __future__ import annotations

__all__ = ["STORAGE_CONNECTION_VARIABLES"]

#: Where the auto-storage account's connection string is read from, first found wins:
#: batchflow's own, then the one `az storage` reads. Given to the staging wrapper of a
#: task, never to the task's own environment.
STORAGE_CONNECTION_VARIABLES = (
    "BATCHFLOW_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_CONNECTION_STRING",
)
