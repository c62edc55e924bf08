"""Places to run a job: one protocol (`Backend`), chosen with `get_backend(target)`.

Implementations are imported only when chosen, so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any

from batchflow.backends.base import (
    Backend,
    FailureInfo,
    FileInfo,
    JobStatus,
    SubmitResult,
    TaskCounts,
    TaskInfo,
)
from batchflow.exceptions import BackendError

__all__ = [
    "Backend",
    "FailureInfo",
    "FileInfo",
    "JobStatus",
    "SubmitResult",
    "TaskCounts",
    "TaskInfo",
    "get_backend",
]

TARGETS = ("local",)


def get_backend(target: str | None = None, **options: Any) -> Backend:
    """The backend for `target` ("local" by default), configured with `options`."""
    name = (target or "local").lower()
    if name == "local":
        from batchflow.backends.local import LocalBackend

        return LocalBackend(**options)
    raise BackendError(f"unknown target '{target}'; choose one of: {', '.join(TARGETS)}")
