"""The local engine: runs jobs on this machine with Azure Batch semantics.

Modules, one concept each:

- `paths`: the state directory and the node directory layout;
- `store`: the SQLite state file (WAL), shared by the engine and the CLI;
- `catalog`: putting a job into the store (create, or attach to an existing one);
- `jobrun`: a job's compact in-memory scheduling state;
- `outcome`: retries, results, failureInfo and exit options of a finished attempt;
- `launch`, `runner`: the environment, directories and process of one attempt;
- `stage`: the wrapper that stages files for tasks that have them;
- `prepare`: job preparation and release tasks;
- `recovery`: taking over from an engine that died;
- `engine`: the scheduler loop, a process of its own; `starting` (filling slots,
  spawning), `transitions` (an attempt's end, job terminate/disable/delete),
  `lookahead` (the next tasks' rows) and `taskdirs` (their directories, made ahead by a
  helper process) are its parts;
- `control`: the lock, the wake-up FIFO, starting the engine;
- `backend`: `LocalBackend`, the `Backend` protocol over all of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchflow.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        from batchflow.backends.local.backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
