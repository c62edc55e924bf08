"""Places to run a job: one protocol (`Backend`), chosen with `get_backend(target)`.

Implementations are imported only when chosen, and the protocol's types only when used,
so the CLI and the local engine's process start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from batchflow.backends.base import (
        Backend,
        FailureInfo,
        FileInfo,
        JobStatus,
        SubmitResult,
        TaskCounts,
        TaskInfo,
    )

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

TARGETS = ("local", "azure")


def __getattr__(name: str) -> Any:
    if name in __all__:
        from batchflow.backends import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_backend(target: str | None = None, **options: Any) -> Backend:
    """The backend for `target` ("local" by default, or "azure" with `account=` an
    `AzureTarget`), configured with `options`."""
    name = (target or "local").lower()
    if name == "local":
        from batchflow.backends.local import LocalBackend

        return LocalBackend(**options)
    if name == "azure":
        from batchflow.backends.azure import AzureBackend

        return AzureBackend(options.pop("account"), **options)
    raise BackendError(f"unknown target '{target}'; choose one of: {', '.join(TARGETS)}")
