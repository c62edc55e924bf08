"""Checking a task that arrives in the wire shape (the emulator's Add Task, users' code)
against the model's rules and its job's, with Batch's error codes."""

from __future__ import annotations

from typing import Any

from batchflow.backends.local.catalog import NewTask, canonical
from batchflow.exceptions import BackendError

__all__ = ["check_constraints", "check_task"]


def _invalid(message: str, code: str, task_id: Any, field: str | None = None) -> BackendError:
    values = (("PropertyName", field),) if field else ()
    return BackendError(
        message,
        code=code,
        task_id=task_id if isinstance(task_id, str) else None,
        values=values,
    )


def _model_error(exc: Any, task_id: Any) -> BackendError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    code = "MissingRequiredProperty" if first.get("type") == "missing" else "InvalidPropertyValue"
    where = f"task '{task_id}' " if isinstance(task_id, str) else ""
    return _invalid(f"{where}{field}: {message}", code, task_id, field)


def check_task(task: Any, job: dict[str, Any]) -> NewTask:
    """`task` (a wire dict) as a `NewTask`, or the `BackendError` Batch would answer."""
    from pydantic import ValidationError

    from batchflow.model import TaskSpec

    if not isinstance(task, dict):
        raise _invalid("a task must be a JSON object", "InvalidRequestBody", None)
    task_id = task.get("id")
    try:
        spec = TaskSpec.model_validate(task)
    except ValidationError as exc:
        raise _model_error(exc, task_id) from None
    wire = spec.to_wire()
    task_id = wire.pop("id")
    for special in ("jobPreparationTask", "jobReleaseTask", "jobManagerTask"):
        other = job.get(special) or {}
        default = {"jobPreparationTask": "jobpreparation", "jobReleaseTask": "jobrelease"}
        other_id = other.get("id") or (default.get(special) if other else None)
        if other_id and other_id.lower() == task_id.lower():
            code = "TaskIdSameAs" + special[0].upper() + special[1:]
            raise _invalid(f"task id '{task_id}' is the id of the job's {special}", code, task_id)
    depends = wire.get("dependsOn") or {}
    if depends and not job.get("usesTaskDependencies"):
        raise _invalid(
            f"task '{task_id}' has dependsOn but the job does not set usesTaskDependencies",
            "TaskDependenciesNotSpecifiedOnJob",
            task_id,
            "dependsOn",
        )
    ids = depends.get("taskIds") or []
    if sum(len(i) for i in ids) > 64000:
        raise _invalid(
            f"task '{task_id}' dependsOn.taskIds: over 64,000 characters of ids (use ranges)",
            "TaskDependencyListTooLong",
            task_id,
            "dependsOn.taskIds",
        )
    if any(i.lower() == task_id.lower() for i in ids):
        raise _invalid(
            f"task '{task_id}' dependsOn.taskIds: a task cannot depend on itself",
            "InvalidPropertyValue",
            task_id,
            "dependsOn.taskIds",
        )
    _check_exit_options(wire.get("exitConditions") or {}, job, task_id)
    ranges = [(r["start"], r["end"]) for r in depends.get("taskIdRanges") or ()]
    return NewTask(task_id, canonical(wire), ids, ranges, wire.get("requiredSlots", 1))


def _check_exit_options(conditions: dict[str, Any], job: dict[str, Any], task_id: str) -> None:
    options = [
        conditions.get(k) or {} for k in ("preProcessingError", "fileUploadError", "default")
    ]
    options += [m.get("exitOptions") or {} for m in conditions.get("exitCodes") or ()]
    options += [m.get("exitOptions") or {} for m in conditions.get("exitCodeRanges") or ()]
    acts = str(job.get("onTaskFailure", "noaction")).lower() == "performexitoptionsjobaction"
    for option in options:
        if option.get("jobAction") and str(option["jobAction"]).lower() != "none" and not acts:
            raise _invalid(
                f"task '{task_id}' exitConditions: jobAction needs the job's onTaskFailure "
                "to be performexitoptionsjobaction",
                "InvalidPropertyValue",
                task_id,
                "exitConditions",
            )
        if option.get("dependencyAction") and not job.get("usesTaskDependencies"):
            raise _invalid(
                f"task '{task_id}' exitConditions: dependencyAction needs the job's "
                "usesTaskDependencies",
                "InvalidPropertyValue",
                task_id,
                "exitConditions",
            )


def check_constraints(constraints: Any, *, job_id: str, task_id: str) -> None:
    """A task's new constraints, checked by the model's rules."""
    from pydantic import ValidationError

    from batchflow.model import TaskConstraints

    if not isinstance(constraints, dict):
        raise BackendError(
            "constraints must be a JSON object", code="InvalidRequestBody", job_id=job_id
        )
    try:
        TaskConstraints.model_validate(constraints)
    except ValidationError as exc:
        error = _model_error(exc, task_id)
        error.job_id = job_id
        raise error from None
