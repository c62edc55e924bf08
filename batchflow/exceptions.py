"""Every error batchflow raises on purpose.

```
BatchflowError
├── FlowError                  a flow is wrong; carries file, line, job, task and field
│   ├── InvalidFieldError      a field breaks one of Batch's rules (bad id, bad duration, ...)
│   ├── DuplicateTaskError     two tasks share an id (case-insensitively, as Batch compares)
│   ├── UnknownTaskError       a dependency names a task that is not in the job
│   ├── CycleError             dependencies form a cycle; `cycle` holds the task ids
│   ├── FlowLoadError          the FLOW file is missing, unreadable, malformed or its code fails
│   ├── FlowInvalid            several problems at once (`problems` holds each of them)
│   └── InputNotFoundError     an `inputs=` file is missing (also a FileNotFoundError)
├── BackendError               a backend could not do what was asked; carries Batch's
│   │                          error code (JobNotFound, TaskExists, ...), its kind, the ids
│   └── SubmitError
├── StateError                 the state store is unusable (unwritable directory, full disk, ...)
├── StagingError               a task's files could not be moved; carries Batch's failureInfo
│   ├── PreprocessingError     a resource file could not be fetched (BlobNotFound, ...)
│   └── FileUploadError        an output file could not be uploaded (FileUploadMiscError, ...)
└── InfraConfigError           a stack's settings or files are wrong; carries stack, key, problems
```

Errors raised while a flow is defined keep their fields as attributes, so callers
and tests read `err.task_id` or `err.field` instead of parsing the message.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchflow.validation import Problem

__all__ = [
    "ERROR_KINDS",
    "BackendError",
    "BatchflowError",
    "CycleError",
    "DuplicateTaskError",
    "FileUploadError",
    "FlowError",
    "FlowInvalid",
    "FlowLoadError",
    "InfraConfigError",
    "InputNotFoundError",
    "InvalidFieldError",
    "PreprocessingError",
    "StagingError",
    "StateError",
    "SubmitError",
    "UnknownTaskError",
]


def located(where: Any, message: str) -> str:
    """`message` after `file:line: job 'j' task 't' field` (the parts `where` knows)."""
    parts: list[str] = []
    if where.file:
        parts.append(f"{where.file}:{where.line}:" if where.line else f"{where.file}:")
    if where.job_id:
        parts.append(f"job '{where.job_id}'")
    if where.task_id:
        parts.append(f"task '{where.task_id}'")
    if where.field:
        parts.append(where.field)
    prefix = " ".join(parts)
    if not message:
        return prefix
    if not prefix:
        return message
    return f"{prefix} {message}" if prefix.endswith(":") else f"{prefix}: {message}"


class BatchflowError(Exception):
    """Base class of every error batchflow raises on purpose."""


class FlowError(BatchflowError):
    """Something in a flow is wrong; says where (file, line, job, task, field) and what."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        task_id: str | None = None,
        field: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.task_id = task_id
        self.field = field
        self.file = file
        self.line = line

    def location(self) -> str:
        """`file:line: job 'j' task 't' field` with whatever parts are known."""
        return located(self, "")

    def __str__(self) -> str:
        return located(self, self.message)


class InvalidFieldError(FlowError):
    """A field value breaks one of Azure Batch's rules."""


class DuplicateTaskError(FlowError):
    """Two tasks in one job share an id; Batch compares ids case-insensitively."""


class UnknownTaskError(FlowError):
    """A dependency names a task that is not in the job."""


class CycleError(FlowError):
    """The dependencies of a job form a cycle."""

    def __init__(self, message: str, *, cycle: Sequence[str], **where: object) -> None:
        super().__init__(message, **where)  # type: ignore[arg-type]
        self.cycle = list(cycle)


class FlowLoadError(FlowError):
    """A FLOW file cannot be read: missing, not UTF-8, malformed, or its code raised."""


class FlowInvalid(FlowError):
    """A flow has one or more errors; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0] if errors else None
        super().__init__(
            first.message if first else "the flow is invalid",
            job_id=first.job_id if first else None,
            task_id=first.task_id if first else None,
            field=first.field if first else None,
            file=first.file if first else None,
            line=first.line if first else None,
        )
        self.problems = list(problems)

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        return "\n".join(str(p) for p in errors) or self.message


class InputNotFoundError(FlowError, FileNotFoundError):
    """A local `inputs=` file or directory of a task does not exist.

    Also a `FileNotFoundError` (errno ENOENT, `filename` is the missing path), so code that
    handles missing files in general catches it too.
    """

    def __init__(self, message: str, *, path: str, **where: str | int | None) -> None:
        super().__init__(message, **where)  # type: ignore[arg-type]
        self.errno = errno.ENOENT
        self.strerror = message
        self.filename = path
        self.path = path


#: Batch's error codes by kind: what an edge (the CLI, the emulator) needs to answer in its
#: own form. A code not listed is `invalid`.
ERROR_KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "JobNotFound",
            "TaskNotFound",
            "PoolNotFound",
            "NodeNotFound",
            "FileNotFound",
            "ResourceNotFound",
        ),
        "not_found",
    ),
    **dict.fromkeys(
        (
            "JobExists",
            "TaskExists",
            "PoolExists",
            "JobBeingDeleted",
            "JobBeingTerminated",
            "JobCompleted",
            "JobDisabled",
            "JobNotActive",
            "TaskCompleted",
            "TaskNotCompleted",
            "TaskSucceeded",
            "TaskFilesUnavailable",
            "TaskFilesCleanedup",
            "TaskIdSameAsJobPreparationTask",
            "TaskIdSameAsJobReleaseTask",
            "TaskIdSameAsJobManagerTask",
            "TaskDefinitionChanged",
            "JobDefinitionChanged",
            "OperationInvalidForCurrentState",
            "PropertyCannotBeUpdated",
            "ConditionNotMet",
        ),
        "conflict",
    ),
    **dict.fromkeys(("ServerBusy", "OperationTimedOut", "InternalError"), "unavailable"),
}


class BackendError(BatchflowError):
    """A backend could not carry out a request.

    `code` is Batch's error code (`JobNotFound`, `TaskExists`, ...), `kind` its class
    (`not_found`, `conflict`, `invalid`, `unavailable`), `job_id` / `task_id` the ids
    involved, `values` Batch's extra (key, value) details. The message is for people and
    names no command or flag of any client: each edge adds its own advice by code.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "InvalidPropertyValue",
        job_id: str | None = None,
        task_id: str | None = None,
        values: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.job_id = job_id
        self.task_id = task_id
        self.values = tuple(values)

    @property
    def kind(self) -> str:
        """`not_found`, `conflict`, `invalid` or `unavailable`."""
        return ERROR_KINDS.get(self.code, "invalid")


class SubmitError(BackendError):
    """A job or its tasks could not be submitted."""


class StateError(BatchflowError):
    """The state store cannot be used (unwritable directory, full disk, corrupt file).

    `elsewhere`: whether using another state directory is the way out (the CLI then says
    how to choose one); False when the message says what to do itself.
    """

    def __init__(self, message: str, *, elsewhere: bool = True) -> None:
        super().__init__(message)
        self.elsewhere = elsewhere


class StagingError(BatchflowError):
    """A task's files could not be staged; the fields are Batch's `failureInfo`.

    `category` is `usererror` or `servererror`, `code` is Batch's code (`BlobNotFound`,
    `FileUploadContainerNotFound`, ...), `message` is for people and never holds a secret
    (it is redacted here, whatever the caller passed), `details` are `(name, value)` pairs.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        category: str,
        details: Sequence[tuple[str, str]] = (),
    ) -> None:
        from batchflow.redact import redact

        message = redact(message)
        super().__init__(message)
        self.code = code
        self.category = category
        self.message = message
        self.details = tuple((name, redact(value)) for name, value in details)

    def __str__(self) -> str:
        return self.message


class PreprocessingError(StagingError):
    """A resource file could not be fetched: the task fails before its command runs."""


class FileUploadError(StagingError):
    """An output file could not be uploaded after the task ran."""


class InfraConfigError(BatchflowError):
    """A stack's settings (or its Pulumi files) are wrong; nothing was planned or created.

    `stack` and `key` name the first bad setting (`batchflow:pools.render.vmSize`);
    `problems` holds one line per bad setting.
    """

    def __init__(
        self,
        message: str,
        *,
        stack: str | None = None,
        key: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.stack = stack
        self.key = key
        self.problems = list(problems) or [message]
