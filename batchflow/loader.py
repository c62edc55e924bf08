"""Read a FLOW file: Python that defines `Job`s, or the JSON that `az batch` takes.

JSON comes in every form users have today:

- a task array, or the `{"value": [...]}` collection (`az batch task create --json-file`);
- one task object (`az batch task create --json-file` with a single task);
- a job document (`az batch job create --json-file`), optionally with a `tasks` array
  (batchflow's own export format).

For the task-only forms the job id and pool come from `job_id`/`pool_id` (the CLI's
`--job-id`/`--pool-id`), with the file name as the default job id. JSON problems are
collected, not raised, so `validate` can report every error of a file at once.

A Python flow is imported by running it: every `Job` bound at module level is collected.
An exception in it becomes one `FlowLoadError` naming the flow's own line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchflow.dsl import Job, Task
from batchflow.exceptions import (
    BatchflowError,
    DuplicateTaskError,
    FlowError,
    FlowInvalid,
    FlowLoadError,
)
from batchflow.validation import (
    Problem,
    input_problems,
    problems_from_validation_error,
    validate,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchflow import model
    from batchflow.validation import JobTasks

__all__ = ["Flow", "load"]


@dataclass
class Flow:
    """The jobs of one FLOW file and the problems found while reading it."""

    path: str
    jobs: list[Job]
    problems: list[Problem] = field(default_factory=list)

    def validate(
        self,
        *,
        inputs: bool = True,
        existing: Callable[[str], JobTasks | None] | None = None,
    ) -> list[Problem]:
        """Problems found while reading plus each job's validation: errors, then warnings.

        With `inputs` (the default), a missing `inputs=` file is an error too, as `submit`
        would refuse it; `export` and `graph`, which stage nothing, skip that check.
        `existing` answers for the jobs already stored where the flow goes (see
        `validation.validate`): a dependency on a task such a job has is no error.
        """
        found = list(self.problems)
        # A job whose every task was refused while reading has no tasks: that is said already.
        refused = {
            p.job_id
            for p in self.problems
            if p.severity == "error" and (p.task_id or (p.field or "").startswith(("[", "tasks[")))
        }
        for job in self.jobs:
            checked = validate(job, file=self.path, existing=existing)
            if job.id in refused:
                checked = [p for p in checked if p.code != "no-tasks"]
            found.extend(checked)
            if inputs:
                found.extend(input_problems(job, file=self.path))
        return [p for p in found if p.severity == "error"] + [
            p for p in found if p.severity != "error"
        ]

    def check(
        self,
        *,
        inputs: bool = True,
        strict: bool = False,
        existing: Callable[[str], JobTasks | None] | None = None,
    ) -> list[Problem]:
        """Like `validate`, but raise `FlowInvalid` (with every problem) on any error, or on
        any warning too with `strict`."""
        found = self.validate(inputs=inputs, existing=existing)
        if strict:
            found = [dataclasses.replace(p, severity="error") for p in found]
        if any(p.severity == "error" for p in found):
            raise FlowInvalid(found)
        return found

    def job(self, job_id: str | None = None) -> Job:
        """The job with this id, or the only job when `job_id` is None."""
        if job_id is None:
            if len(self.jobs) == 1:
                return self.jobs[0]
            ids = ", ".join(f"'{j.id}'" for j in self.jobs)
            raise FlowLoadError(
                f"the flow defines {len(self.jobs)} jobs ({ids}); pick one with --job",
                file=self.path,
            )
        for job in self.jobs:
            if job.id.lower() == job_id.lower():
                return job
        ids = ", ".join(f"'{j.id}'" for j in self.jobs)
        raise FlowLoadError(f"the flow has no job '{job_id}' (it has {ids})", file=self.path)


def load(path: str | Path, *, job_id: str | None = None, pool_id: str | None = None) -> Flow:
    """Read the FLOW file at `path` (.py or .json)."""
    shown = str(path)
    target = Path(path)
    if not target.exists():
        raise FlowLoadError("no such file", file=shown)
    if target.is_dir():
        raise FlowLoadError("is a directory; FLOW is a .py or .json file", file=shown)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise FlowLoadError(f"cannot be read: {exc.strerror}", file=shown) from None
    if not data.strip():
        raise FlowLoadError(
            "is empty; FLOW is a .py file defining a Job, or Batch task/job JSON", file=shown
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FlowLoadError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=shown
        ) from None
    suffix = target.suffix.lower()
    if suffix == ".py":
        flow = _load_python(target, text, shown)
        if pool_id:
            for job in flow.jobs:
                job.default_pool(pool_id)
        return flow
    if suffix == ".json" or text.lstrip()[:1] in ("{", "["):
        return _load_json(
            text, shown, job_id=job_id, pool_id=pool_id, default_id=_id_from_name(target.stem)
        )
    raise FlowLoadError("is neither a .py nor a .json file", file=shown)


# -- Python --------------------------------------------------------------------------


def _load_python(path: Path, text: str, shown: str) -> Flow:
    filename = str(path.resolve())
    try:
        code = compile(text, filename, "exec")
    except SyntaxError as exc:
        raise FlowLoadError(f"syntax error: {exc.msg}", file=shown, line=exc.lineno) from None
    namespace: dict[str, Any] = {"__name__": "__batchflow_flow__", "__file__": filename}
    sys.path.insert(0, str(path.resolve().parent))
    try:
        exec(code, namespace)
    except (Exception, SystemExit) as exc:
        raise _user_error(exc, filename, shown) from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    jobs: list[Job] = []
    for value in namespace.values():
        if isinstance(value, Job) and all(value is not j for j in jobs):
            value.source = shown
            jobs.append(value)
    if not jobs:
        raise FlowLoadError(
            'defines no Job at module level (write `job = Job("my-job")`)', file=shown
        )
    return Flow(shown, jobs)


def _user_error(exc: BaseException, filename: str, shown: str) -> FlowLoadError:
    """The error in the flow's own words, at the flow's own line (none of our frames), and
    where it was raised when that is in another module of the user's (`helpers.py:7`)."""
    line = None
    innermost = None
    last_frame = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        code_file = frame.f_code.co_filename
        if code_file == filename:
            line = lineno
        if _is_users(code_file):
            innermost = (code_file, lineno)
        last_frame = frame
    raised_at = ""
    if innermost is not None and innermost[0] != filename:
        raised_at = f" (raised at {_shown_path(innermost[0])}:{innermost[1]})"
    if isinstance(exc, FlowError):
        return FlowLoadError(
            exc.message + raised_at,
            job_id=exc.job_id,
            task_id=exc.task_id,
            field=exc.field,
            file=shown,
            line=line or exc.line,
        )
    if isinstance(exc, SystemExit):
        return FlowLoadError(
            f"the flow called exit({exc.code!r}){raised_at}", file=shown, line=line
        )
    detail = str(exc) if isinstance(exc, BatchflowError) else f"{type(exc).__name__}: {exc}"
    hint = _name_hint(exc, last_frame)
    return FlowLoadError(f"error in the flow: {detail}{hint}{raised_at}", file=shown, line=line)


def _name_hint(exc: BaseException, frame: Any) -> str:
    """` (did you mean 'frames'?)` for a misspelt name or attribute (`job.taks`), as
    Python's own traceback would suggest."""
    import builtins

    from batchflow.names import did_you_mean

    if isinstance(exc, TypeError):
        return _keyword_hint(str(exc))
    name = getattr(exc, "name", None)
    if not isinstance(name, str) or frame is None:
        return ""
    if isinstance(exc, AttributeError):
        owner = getattr(exc, "obj", None)
        if owner is None:
            return ""
        known: list[str] = [n for n in dir(owner) if not n.startswith("_")]
    elif isinstance(exc, NameError):
        known = [*frame.f_locals, *frame.f_globals, *dir(builtins)]
    else:
        return ""
    close = did_you_mean(name, known)
    return f" (did you mean '{close}'?)" if close else ""


def _keyword_hint(message: str) -> str:
    """` (did you mean 'wall_clock'?)` for `Job.task() got an unexpected keyword argument
    'wallclock'`: the closest parameter of the DSL's function."""
    import inspect
    import re

    from batchflow import dsl
    from batchflow.names import did_you_mean

    found = re.fullmatch(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'", message)
    if found is None:
        return ""
    target: Any = dsl
    for part in found.group(1).split("."):
        target = getattr(target, part, None)
        if target is None:
            return ""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return ""
    close = did_you_mean(found.group(2), [p for p in parameters if p != "self"])
    return f" (did you mean '{close}'?)" if close else ""


_OURS = os.path.dirname(os.path.abspath(__file__))
_NOT_USERS = tuple(
    {os.path.abspath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
)


def _is_users(code_file: str) -> bool:
    """Whether a frame's file is the user's code: not batchflow, the stdlib or a package."""
    if code_file.startswith("<"):
        return False
    path = os.path.abspath(code_file)
    return not (
        path.startswith(_OURS + os.sep) or path.startswith(_NOT_USERS) or "site-packages" in path
    )


def _shown_path(path: str) -> str:
    """`path` relative to the current directory when it is below it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


# -- JSON ----------------------------------------------------------------------------

_FORMS = 'a task object, a list of tasks, {"value": [tasks]}, or a job object'


def _id_from_name(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:64]
    return cleaned or "job"


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), "a value")


def _load_json(
    text: str, shown: str, *, job_id: str | None, pool_id: str | None, default_id: str
) -> Flow:
    from pydantic import ValidationError

    from batchflow import model

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlowLoadError(
            f"is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})",
            file=shown,
            line=exc.lineno,
        ) from None
    except RecursionError:
        raise FlowLoadError("is not valid JSON: nested too deeply", file=shown) from None
    locator = _Locator(text)
    if isinstance(data, list):
        raw_tasks, raw_job = data, None
    elif isinstance(data, dict) and "commandLine" in data:
        raw_tasks, raw_job = [data], None
    elif isinstance(data, dict) and set(data) <= {"value", "odata.metadata"} and "value" in data:
        if not isinstance(data["value"], list):
            raise FlowLoadError(
                f"'value' holds {_json_type(data['value'])}; expected a list of tasks",
                file=shown,
                field="value",
            )
        raw_tasks, raw_job = data["value"], None
    elif isinstance(data, dict):
        raw_job = data
        raw_tasks = data.get("tasks") or []
        if not isinstance(raw_tasks, list):
            raise FlowLoadError(
                f"'tasks' holds {_json_type(raw_tasks)}; expected a list of tasks",
                file=shown,
                field="tasks",
            )
    else:
        raise FlowLoadError(f"holds {_json_type(data)}; expected {_FORMS}", file=shown)

    problems: list[Problem] = []
    if raw_job is None:
        wire: dict[str, Any] = {"id": job_id or default_id}
        if pool_id:
            wire["poolInfo"] = {"poolId": pool_id}
        try:
            spec = model.JobSpec.model_validate(wire, context=model.WIRE)
        except ValidationError as exc:
            raise FlowLoadError(
                problems_from_validation_error(exc)[0].message, field="--job-id", file=shown
            ) from None
        job = Job.from_spec(spec, line=None)
        job.tasks_only = True
    else:
        job = _job_from_json(raw_job, shown, locator, problems, pool_id)
        job.tasks_follow = "tasks" not in raw_job
    job.source = shown
    job.from_json = True
    for n, raw in enumerate(raw_tasks):
        _add_task(job, raw, n, shown, locator, problems, in_job=raw_job is not None)
    return Flow(shown, [job], problems)


def _job_from_json(
    raw: dict[str, Any], shown: str, locator: _Locator, problems: list[Problem], pool_id: str | None
) -> Job:
    from pydantic import ValidationError

    from batchflow import model

    body = {k: v for k, v in raw.items() if k != "tasks"}
    raw_id = body.get("id")
    line = locator.line_of("id", raw_id) if isinstance(raw_id, str) else None
    try:
        spec = model.JobSpec.model_validate(body, context=model.WIRE)
    except ValidationError as exc:
        problems.extend(
            problems_from_validation_error(
                exc, job_id=raw_id if isinstance(raw_id, str) else None, file=shown, line=line
            )
        )
        fallback = raw_id if isinstance(raw_id, str) and model._ID.fullmatch(raw_id) else "job"
        spec = model.JobSpec(id=fallback)
    if pool_id and spec.pool_info is None:
        spec = spec.model_copy(update={"pool_info": model.PoolInfo(pool_id=pool_id)})
    return Job.from_spec(spec, line=line)


def _add_task(
    job: Job,
    raw: Any,
    n: int,
    shown: str,
    locator: _Locator,
    problems: list[Problem],
    *,
    in_job: bool,
) -> None:
    from pydantic import ValidationError

    from batchflow import model

    prefix = f"tasks[{n}]" if in_job else f"[{n}]"
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "error",
                "type",
                f"holds {_json_type(raw)}; expected a task object",
                job.id,
                None,
                prefix,
                shown,
            )
        )
        return
    raw_id = raw.get("id")
    task_id = raw_id if isinstance(raw_id, str) else None
    line = locator.line_of("id", task_id) if task_id else None
    try:
        spec = model.TaskSpec.model_validate(raw, context=model.WIRE)
    except ValidationError as exc:
        problems.extend(
            problems_from_validation_error(
                exc,
                job_id=job.id,
                task_id=task_id,
                prefix="" if task_id else prefix,
                file=shown,
                line=line,
            )
        )
        # Keep what can be kept, so cross-task checks (duplicates, dependencies) still run.
        command = raw.get("commandLine")
        if task_id and isinstance(command, str) and command and model._ID.fullmatch(task_id):
            _add(job, _salvage(task_id, command, raw, line), shown, problems)
        return
    wire = spec.to_wire()
    wire.pop("id")
    command = wire.pop("commandLine")
    depends = spec.depends_on
    wire.pop("dependsOn", None)
    task = Task(
        spec.id,
        command,
        dep_ids=tuple(depends.task_ids or ()) if depends else (),
        dep_ranges=tuple((r.start, r.end) for r in depends.task_id_ranges or ()) if depends else (),
        spec=wire or None,
        line=line,
    )
    _add(job, task, shown, problems)


def _salvage(task_id: str, command: str, raw: dict[str, Any], line: int | None) -> Task:
    """A task from what is valid in `raw`: each invalid value (already reported) is cut out."""
    from pydantic import ValidationError

    from batchflow import model

    data: Any = copy.deepcopy(raw)
    spec: model.TaskSpec | None = None
    for _ in range(8):
        try:
            spec = model.TaskSpec.model_validate(data, context=model.WIRE)
            break
        except ValidationError as exc:
            paths = []
            for err in exc.errors():
                path = tuple(err["loc"][:-1] if err["type"] == "missing" else err["loc"])
                if not path or path[0] in ("id", "commandLine"):
                    continue
                paths.append(path)
            if not paths:
                break
            # Deepest and highest list index first, so earlier cuts do not shift later ones.
            order = sorted(
                set(paths),
                key=lambda p: [(0, x, "") if isinstance(x, int) else (1, 0, x) for x in p],
            )
            for path in reversed(order):
                _cut(data, path)
    wire = spec.to_wire() if spec is not None else {}
    wire.pop("id", None)
    wire.pop("commandLine", None)
    depends = wire.pop("dependsOn", None) or {}
    return Task(
        task_id,
        command,
        dep_ids=tuple(depends.get("taskIds") or ()),
        dep_ranges=tuple((r["start"], r["end"]) for r in depends.get("taskIdRanges") or ()),
        spec=wire or None,
        line=line,
    )


def _cut(data: Any, path: tuple[Any, ...]) -> None:
    """Delete the value at `path` (dict keys and list indexes) if it is still there."""
    for part in path[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(data, dict):
        data.pop(last, None)
    elif isinstance(data, list) and isinstance(last, int) and last < len(data):
        del data[last]


def _add(job: Job, task: Task, shown: str, problems: list[Problem]) -> None:
    try:
        job.add(task)
    except DuplicateTaskError as exc:
        problems.append(
            Problem("error", "duplicate-id", exc.message, job.id, task.id, "id", shown, task.line)
        )


class _Locator:
    """Finds the line of a task's `"id": "..."` in the JSON text, for error messages."""

    _ID = re.compile(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: dict[str, int] | None = None

    def line_of(self, key: str, value: str | None) -> int | None:
        if value is None:
            return None
        if self._lines is None:
            self._lines = {}
            line, last = 1, 0
            for match in self._ID.finditer(self.text):
                line += self.text.count("\n", last, match.start())
                last = match.start()
                self._lines.setdefault(match.group(1), line)
        return self._lines.get(value)
