"""A task's files, as Batch's file API serves them (batch-semantics.md 3.6, 5.5).

Names are relative to the task directory (`stdout.txt`, `stderr.txt`, `wd/out.csv`) and
use `/`. A task that has not started has no files (`OperationInvalidForCurrentState`);
one whose directory went with its retentionTime says so (`TaskFilesCleanedup`); a path
that leaves the task directory, through `..` or a symlink, is refused.
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

__all__ = ["TaskFiles"]


class TaskFiles:
    """The file operations of one service."""

    def __init__(self, service: BatchService) -> None:
        self.service = service

    def root(self, job_id: str, task_id: str) -> Path:
        """The task directory of a started task."""
        service = self.service
        db = service.store.conn
        job = service._job(db, job_id)
        state, node, cleaned, name = service._task_row(db, job, task_id, "state, node, cleaned, id")
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

    def path(self, job_id: str, task_id: str, name: str, *, directory: bool = False) -> Path:
        """The local path of a task file (or directory); `FileNotFound` if there is none."""
        root = self.root(job_id, task_id).resolve()
        target = (root / name.replace("\\", "/").lstrip("/")).resolve()
        if target != root and root not in target.parents:
            raise BackendError(
                f"'{name}' is outside the task directory of task '{task_id}'",
                code="InvalidPropertyValue",
                job_id=job_id,
                task_id=task_id,
                values=(("PropertyName", "filePath"),),
            )
        found = target.is_file() or (directory and target.is_dir())
        if not found:
            raise BackendError(
                f"task '{task_id}' has no file '{name}'",
                code="FileNotFound",
                job_id=job_id,
                task_id=task_id,
            )
        return target

    def list(self, job_id: str, task_id: str, *, recursive: bool = False) -> list[dict[str, Any]]:
        """`GET .../files[?recursive=true]`: entries in the wire shape, sorted by name."""
        root = self.root(job_id, task_id)
        found: list[dict[str, Any]] = []
        if not root.exists():
            return found
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            base = Path(folder)
            for name in [*dirs, *sorted(names)]:
                path = base / name
                relative = path.relative_to(root).as_posix()
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

    def properties(self, job_id: str, task_id: str, name: str) -> dict[str, Any]:
        """`HEAD .../files/{path}`: the file's wire entry."""
        target = self.path(job_id, task_id, name)
        return _entry(name, target.stat())

    def read(
        self,
        job_id: str,
        task_id: str,
        name: str,
        *,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes:
        """`GET .../files/{path}` (with `ocp-range`): `length` bytes from `offset`."""
        target = self.path(job_id, task_id, name)
        with open(target, "rb") as source:
            source.seek(offset)
            return source.read() if length is None else source.read(length)

    def delete(self, job_id: str, task_id: str, name: str, *, recursive: bool = False) -> None:
        """`DELETE .../files/{path}`: a file, or a directory (its content with
        `recursive`; a non-empty one without it is refused)."""
        target = self.path(job_id, task_id, name, directory=True)
        if target.is_dir():
            if any(target.iterdir()) and not recursive:
                raise BackendError(
                    f"'{name}' of task '{task_id}' is a directory that is not empty "
                    "(delete it recursively)",
                    code="OperationInvalidForCurrentState",
                    job_id=job_id,
                    task_id=task_id,
                )
            shutil.rmtree(target)
        else:
            target.unlink()


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
