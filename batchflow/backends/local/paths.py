"""Where the local engine keeps things: the state directory and the node directory trees.

```
<state-dir>/                      default ./.batchflow, or --state-dir / BATCHFLOW_STATE_DIR
  state.db (+ -wal, -shm)         the SQLite state store
  engine.lock                     held (flock) by the one engine of this state dir; holds its pid
  engine.wake                     FIFO: a CLI writes a byte to wake the engine up
  engine.log                      the engine's own messages
  staging/                        specs and results of tasks run through the staging wrapper
  results/<job>/<task>/...        files matched by the DSL's outputs= patterns
  spare/                          task directories made ahead, before they move into place
  nodes/<node-id>/                AZ_BATCH_NODE_ROOT_DIR of each emulated node (section 4.2)
    applications/ fsmounts/ shared/ startup/ volatile/
    workitems/<job>/job-1/<task>/ AZ_BATCH_TASK_DIR: stdout.txt, stderr.txt, wd/
```
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_STATE_DIR",
    "NODE_SUBDIRS",
    "StateDir",
    "node_name",
    "pool_node_names",
    "resolve_state_dir",
]

DEFAULT_STATE_DIR = ".batchflow"
NODE_SUBDIRS = ("applications", "fsmounts", "shared", "startup", "volatile", "workitems")


def resolve_state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: the argument, else `BATCHFLOW_STATE_DIR`, else `./.batchflow`."""
    chosen = state_dir or os.environ.get("BATCHFLOW_STATE_DIR") or DEFAULT_STATE_DIR
    return Path(os.path.abspath(os.fspath(chosen)))


def pool_node_names(pool_id: str, count: int) -> list[str]:
    """The ids of the nodes of a pool created through the service: `tvm-<pool>-<n>`."""
    return [f"tvm-{pool_id}-{n}" for n in range(1, count + 1)]


def node_name(index: int) -> str:
    """The id of the emulated node number `index` (0-based): `node-1`, `node-2`, ..."""
    return f"node-{index + 1}"


class StateDir:
    """The paths of one state directory (nothing is created until asked)."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def db(self) -> Path:
        """The SQLite file."""
        return self.root / "state.db"

    @property
    def lock(self) -> Path:
        """The engine's lock file."""
        return self.root / "engine.lock"

    @property
    def wake(self) -> Path:
        """The FIFO that wakes the engine."""
        return self.root / "engine.wake"

    @property
    def log(self) -> Path:
        """The engine's log."""
        return self.root / "engine.log"

    @property
    def staging(self) -> Path:
        """Specs and results of the staging wrapper."""
        return self.root / "staging"

    def results(self, job_id: str, task_id: str | None = None) -> Path:
        """Where the `outputs=` of a job (or of one of its tasks) are collected."""
        base = self.root / "results" / job_id
        return base / task_id if task_id else base

    def node_root(self, node: str) -> Path:
        """AZ_BATCH_NODE_ROOT_DIR of a node."""
        return self.root / "nodes" / node

    def job_dir(self, node: str, job_id: str) -> Path:
        """The job's directory on a node (parent of the task directories)."""
        return self.root / "nodes" / node / "workitems" / job_id / "job-1"

    def task_dir(self, node: str, job_id: str, task_id: str) -> Path:
        """AZ_BATCH_TASK_DIR of a task on a node."""
        return self.job_dir(node, job_id) / task_id
