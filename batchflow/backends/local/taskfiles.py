"""Task and node files, as Batch's file API serves them (docs/semantics.md 2.2, 4).

Names are relative to the task directory (`stdout.txt`, `stderr.txt`, `wd/out.csv`), or
to the node's root directory (`shared/...`, `workitems/...`), and use `/`. A task that
has not started has no files (`OperationInvalidForCurrentState`); one whose directory
went with its retentionTime says so (`TaskFilesCleanedup`); a path that leaves the
directory, through `..` or a symlink, is refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.wire import timestamp
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from batchflow.backends.local.service import BatchService

__all__ = ["FileTree", "NodeFiles", "TaskFiles"]


class FileTree:
    """list / read / properties / delete under a root directory a subclass resolves."""

    def __init__(self, service: BatchService) -> None:
        self.service = service

    def root(self, owner: str, item: str) -> Path:
        """The directory of `item` (a task of job `owner`, a node of pool `owner`)."""
        raise NotImplementedError

    def path(self, owner: str, item: str, name: str, *, directory: bool = False) -> Path:
        """The local path of a file (or a directory); `FileNotFound` if there is none."""
        root = self.root(owner, item).resolve()
        target = (root / name.replace("\\", "/").lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise BackendError(
                f"'{name}' is outside the directory of '{item}'",
                code="InvalidPropertyValue",
                job_id=owner,
                task_id=item,
                values=(("PropertyName", "filePath"),),
            )
        found = target.is_file() or (directory and target.is_dir())
        if not found:
            raise BackendError(
                f"'{item}' has no file '{name}'",
                code="FileNotFound",
                job_id=owner,
                task_id=item,
            )
        return target

    def list(
        self, owner: str, item: str, *, recursive: bool = False, prefix: str = ""
    ) -> list[dict[str, Any]]:
        """`GET .../files[?recursive=true]`: entries in the wire shape, sorted by name;
        only the names that start with `prefix` (`$filter=startswith(name,'wd/')`)."""
        root = self.root(owner, item)
        found: list[dict[str, Any]] = []
        if not root.exists():
            return found
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            base = Path(folder)
            for name in [*dirs, *sorted(names)]:
                path = base / name
                relative = path.relative_to(root).as_posix()
                if not relative.startswith(prefix):
                    continue
                if name in dirs:
                    found.append({"name": relative, "isDirectory": True})
                    continue
                try:
                    found.append(_entry(relative, path.lstat()))
                except OSError:
                    continue  # removed meanwhile
            if not recursive:
                break
        return found

    def properties(self, owner: str, item: str, name: str) -> dict[str, Any]:
        """`HEAD .../files/{path}`: the file's wire entry."""
        return _entry(name, self.path(owner, item, name).stat())

    def read(
        self, owner: str, item: str, name: str, *, offset: int = 0, length: int | None = None
    ) -> bytes:
        """`GET .../files/{path}` (with `ocp-range`): `length` bytes from `offset`."""
        with open(self.path(owner, item, name), "rb") as source:
            source.seek(offset)
            return source.read() if length is None else source.read(length)

    def delete(self, owner: str, item: str, name: str, *, recursive: bool = False) -> None:
        """`DELETE .../files/{path}`: a file, or a directory (its content with
        `recursive`; a non-empty one without it is refused)."""
        target = self.path(owner, item, name, directory=True)
        if target.is_dir():
            if any(target.iterdir()) and not recursive:
                raise BackendError(
                    f"'{name}' of '{item}' is a directory that is not empty "
                    "(delete it recursively)",
                    code="OperationInvalidForCurrentState",
                    job_id=owner,
                    task_id=item,
                )
            shutil.rmtree(target)
        else:
            target.unlink()


class TaskFiles(FileTree):
    """A task's files: `owner` is the job id, `item` the task id."""

    def root(self, owner: str, item: str) -> Path:
        """The task directory of a started task."""
        service = self.service
        db = service.store.conn
        job = service._job(db, owner)
        state, node, cleaned, name = service._task_row(db, job, item, "state, node, cleaned, id")
        if cleaned:
            raise BackendError(
                f"the files of task '{name}' were removed after its retentionTime",
                code="TaskFilesCleanedup",
                job_id=job[1],
                task_id=name,
            )
        if state == 0 or node is None:
            raise BackendError(
                f"task '{name}' has not started yet, so it has no files",
                code="OperationInvalidForCurrentState",
                job_id=job[1],
                task_id=name,
            )
        return service.state.task_dir(node, job[1], name)


class NodeFiles(FileTree):
    """A compute node's files: `owner` is the pool id, `item` the node id."""

    def root(self, owner: str, item: str) -> Path:
        """The node's root directory (AZ_BATCH_NODE_ROOT_DIR)."""
        node = self.service.pools.node(owner, item)
        return self.service.state.node_root(node["id"])


def _entry(name: str, stat: os.stat_result) -> dict[str, Any]:
    return {
        "name": name,
        "isDirectory": False,
        "properties": {
            "lastModified": timestamp(stat.st_mtime),
            "contentLength": str(stat.st_size),
            "contentType": "application/octet-stream",
            "fileMode": oct(stat.st_mode),
        },
    }
