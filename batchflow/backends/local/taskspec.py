"""Checking a task or a job that arrives in the wire shape (the emulator's Add Task and
Add Job, users' code) against the model's rules and its job's, with Batch's error codes.

What clients really send is accepted and answered in the model's own form: integers as
strings (`az` sends `"priority": "100"`), durations as `PT01H30M00S`, enums in any case.
"""

from __future__ import annotations

import json
from typing import Any

from batchflow.backends.local.catalog import NewTask, canonical
from batchflow.exceptions import BackendError
from batchflow.names import is_id

__all__ = ["check_constraints", "check_job", "check_job_changes", "check_task"]


_SPECIAL_TASKS = ("jobManagerTask", "jobPreparationTask", "jobReleaseTask")


def _normal_durations(constraints: dict[str, Any] | None) -> None:
    """Durations as Batch answers them (`PT24H` -> `P1D`, `PT01H30M00S` -> `PT1H30M`)."""
    if not constraints:
        return
    from batchflow.durations import format_duration, parse_duration

    for key in ("maxWallClockTime", "retentionTime"):
        value = constraints.get(key)
        if isinstance(value, str) and not value.startswith("P10675199D"):
            constraints[key] = format_duration(parse_duration(value))


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


#: The members of a task simple enough to check without the model (most tasks clients
#: add: an id, a command line, environment variables).
_PLAIN_KEYS = frozenset({"id", "commandLine", "environmentSettings"})
_SETTING_KEYS = frozenset({"name", "value"})


def _plain(task: dict[str, Any]) -> bool:
    """Whether the model would take `task` exactly as it is: only `_PLAIN_KEYS`, each of
    the type and form the model checks (see `TaskSpec`). Anything else goes through the
    model, so every error still comes from it."""
    if not task.keys() <= _PLAIN_KEYS:
        return False
    task_id, command = task.get("id"), task.get("commandLine")
    if type(task_id) is not str or type(command) is not str or not command:
        return False
    if not is_id(task_id):
        return False
    if "environmentSettings" in task:
        settings = task["environmentSettings"]
        if type(settings) is not list:
            return False
        for setting in settings:
            if type(setting) is not dict or not setting.keys() <= _SETTING_KEYS:
                return False
            name = setting.get("name")
            if type(name) is not str or not name or type(setting.get("value", "")) is not str:
                return False
    return True


def _plain_definition(task: dict[str, Any]) -> str:
    """`canonical` of a plain task without its id, written directly (keys in sorted order:
    commandLine, environmentSettings; name, value): what most adds store, so the hot path."""
    dumps = json.dumps
    text = '{"commandLine":' + dumps(task["commandLine"])
    settings = task.get("environmentSettings")
    if settings is not None:
        items = [
            '{"name":'
            + dumps(e["name"])
            + (',"value":' + dumps(e["value"]) if "value" in e else "")
            + "}"
            for e in settings
        ]
        text += ',"environmentSettings":[' + ",".join(items) + "]"
    return text + "}"


def check_task(task: Any, job: dict[str, Any]) -> NewTask:
    """`task` (a wire dict) as a `NewTask`, or the `BackendError` Batch would answer."""
    if not isinstance(task, dict):
        raise _invalid("a task must be a JSON object", "InvalidRequestBody", None)
    task_id = task.get("id")
    if _plain(task):  # no dependencies, exit conditions or slots to check
        plain_id: str = task["id"]
        _check_special_ids(plain_id, job)
        return NewTask(plain_id, _plain_definition(task), [], [], 1)
    from pydantic import ValidationError

    from batchflow.model import TaskSpec

    try:
        spec = TaskSpec.model_validate(task)
    except ValidationError as exc:
        raise _model_error(exc, task_id) from None
    wire = spec.to_wire()
    _normal_durations(wire.get("constraints"))
    task_id = wire.pop("id")
    _check_special_ids(task_id, job)
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


def _check_special_ids(task_id: str, job: dict[str, Any]) -> None:
    """A task may not take the id of the job's manager, preparation or release task."""
    for special in _SPECIAL_TASKS:
        other = job.get(special)
        if not other:
            continue
        default = {"jobPreparationTask": "jobpreparation", "jobReleaseTask": "jobrelease"}
        other_id = other.get("id") or default.get(special)
        if other_id and other_id.lower() == task_id.lower():
            code = "TaskIdSameAs" + special[0].upper() + special[1:]
            raise _invalid(f"task id '{task_id}' is the id of the job's {special}", code, task_id)


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


def check_job(spec: Any) -> dict[str, Any]:
    """A new job (`POST /jobs`) in the model's wire form, or Batch's error."""
    from pydantic import ValidationError

    from batchflow.model import JobSpec

    if not isinstance(spec, dict):
        raise _invalid("a job must be a JSON object", "InvalidRequestBody", None)
    job_id = spec.get("id")
    try:
        wire = JobSpec.model_validate(spec).to_wire()
    except ValidationError as exc:
        error = _model_error(exc, None)
        error.job_id = job_id if isinstance(job_id, str) else None
        error.task_id = None
        raise error from None
    _normal_durations(wire.get("constraints"))
    for special in _SPECIAL_TASKS:
        _normal_durations((wire.get(special) or {}).get("constraints"))
    return wire


def check_job_changes(job_id: str, changes: Any) -> dict[str, Any]:
    """A job update's properties (`PATCH` / `PUT /jobs/{id}`) in the model's wire form;
    which of them may change at all is the service's rule (`update_job`)."""
    if not isinstance(changes, dict):
        raise _invalid("a job update must be a JSON object", "InvalidRequestBody", None)
    present = {k: v for k, v in changes.items() if k != "id"}
    wire = check_job({**present, "id": job_id})
    return {k: wire[k] for k in present if k in wire}


def check_constraints(constraints: Any, *, job_id: str, task_id: str) -> dict[str, Any]:
    """A task's new constraints, checked by the model's rules, in its wire form."""
    from pydantic import ValidationError

    from batchflow.model import TaskConstraints

    if not isinstance(constraints, dict):
        raise BackendError(
            "constraints must be a JSON object", code="InvalidRequestBody", job_id=job_id
        )
    try:
        wire = TaskConstraints.model_validate(constraints).to_wire()
    except ValidationError as exc:
        error = _model_error(exc, task_id)
        error.job_id = job_id
        raise error from None
    _normal_durations(wire)
    return wire
