"""Check a job the way Azure Batch would, before anything runs.

`validate(job)` returns every problem at once: errors (Batch would reject the job or a
task, or the flow can never finish) and warnings (the tutorial's best practices).
Each `Problem` names the job, the task and the field, so one line says where to look.
Field rules (id characters, durations, value ranges) are the pydantic models' own; this
module adds the rules that span tasks: duplicates, dependencies, ranges, cycles and the
settings a task needs from its job.
"""

from __future__ import annotations

import posixpath
import re
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from batchflow._gc import gc_paused
from batchflow.dsl import Job, dep_tuple
from batchflow.exceptions import FlowInvalid, located
from batchflow.graph import Graph, numeric_index
from batchflow.handoffs import stranded_files, unhanded_outputs
from batchflow.names import ID_CHARS, check_id, did_you_mean, is_id
from batchflow.redact import redact

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import BaseModel, ValidationError

__all__ = [
    "JobTasks",
    "Problem",
    "check",
    "input_problems",
    "problems_from_validation_error",
    "validate",
]

#: Batch's limit on the summed length of one task's dependsOn.taskIds.
TASK_IDS_CHAR_LIMIT = 64000
_ALL_IDS = re.compile(rf"(?:{ID_CHARS}{{1,64}}\n)*")
_TASK_DIR_FILES = ("stdout.txt", "stderr.txt", "fileuploadout.txt", "fileuploaderr.txt")
# A relative script or program the command line runs from the working directory.
_SCRIPT = re.compile(
    r"(?:^|[\s'\"(;&|])((?:\./)?[\w.-]+(?:/[\w.-]+)*\.(?:py|sh|bash|R|pl|rb|js|jar|exe))(?=$|[\s'\";&|)])"
)


class JobTasks(Protocol):
    """The tasks a job already holds where the flow goes (a backend's answer).

    A flow may add tasks to an existing job, and their dependencies may name tasks an
    earlier submit added: those are no typo.
    """

    def having(self, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` (lower-cased) that the job has."""
        ...

    def numbers(self, start: int, end: int) -> set[int]:
        """The integers in `start..end` that an id of the job stands for (`taskIdRanges`)."""
        ...

    @property
    def uses_task_dependencies(self) -> bool:
        """Whether the job was created with `usesTaskDependencies` (fixed from then on)."""
        ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: an error Batch would reject, or a warning about a risky setting."""

    severity: Literal["error", "warning"]
    code: str
    message: str
    job_id: str | None = None
    task_id: str | None = None
    field: str | None = None
    file: str | None = None
    line: int | None = None

    def location(self) -> str:
        return located(self, "")

    def __str__(self) -> str:
        return located(self, self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (camelCase, as every `--output json`), without empty fields."""
        names = {"job_id": "jobId", "task_id": "taskId"}
        return {names.get(k, k): v for k, v in asdict(self).items() if v is not None}


def _wire_names(cls: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    from pydantic import BaseModel

    seen = seen if seen is not None else set()
    if cls in seen:
        return set()
    seen.add(cls)
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        names.add(info.alias or name)
        for arg in _types_in(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _wire_names(arg, seen)
    return names


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    out: list[Any] = []
    for arg in args:
        out.extend(_types_in(arg))
    return out


@cache
def _known_fields() -> list[str]:
    """Every wire name of the model, for "did you mean" (pydantic is imported by then)."""
    from batchflow.model import JobSpec

    return sorted(_wire_names(JobSpec))


def problems_from_validation_error(
    exc: ValidationError,
    *,
    job_id: str | None = None,
    task_id: str | None = None,
    prefix: str = "",
    file: str | None = None,
    line: int | None = None,
) -> list[Problem]:
    """One `Problem` per pydantic error, with the field path in Batch's (camelCase) names."""
    problems = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            path = (
                f"{path}[{part}]"
                if isinstance(part, int)
                else (f"{path}.{part}" if path else str(part))
            )
        kind = err["type"]
        if kind == "extra_forbidden":
            name = str(err["loc"][-1])
            close = did_you_mean(name, _known_fields(), cutoff=0.7)
            hint = f" (did you mean '{close}'?)" if close else ""
            message = f"unknown field '{name}'{hint}"
        elif kind == "missing":
            message = "is required"
        elif kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
            message = "must not be empty"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and "input" in err:
                message += f" (got {redact(repr(err['input']))[:80]})"
        problems.append(
            Problem(
                "error",
                kind,
                message,
                job_id=job_id,
                task_id=task_id,
                field=path or None,
                file=file,
                line=line,
            )
        )
    return problems


def validate(
    job: Job,
    *,
    file: str | None = None,
    existing: Callable[[str], JobTasks | None] | None = None,
) -> list[Problem]:
    """Every error and warning of `job`, errors first.

    `existing(job_id)` tells which tasks the stored job with that id already has (None:
    there is no such job); it is asked at most once, and only when the flow has
    dependencies: one on a task that is not in the flow is no error if the job has the
    task, and any is an error if the job was created without `usesTaskDependencies`.
    Without it every dependency must be in the flow.
    """
    with gc_paused():
        return _validate(job, file, cache(existing) if existing is not None else None)


def _validate(
    job: Job, file: str | None, existing: Callable[[str], JobTasks | None] | None
) -> list[Problem]:
    file = file or job.source
    errors: list[Problem] = []
    warnings: list[Problem] = []
    jid = job.id
    ids, lines = job._ids, job._lines

    def problem(
        severity: Literal["error", "warning"],
        code: str,
        message: str,
        pos: int | None,
        field: str | None,
    ) -> Problem:
        task_id = ids[pos] if pos is not None else None
        line = lines[pos] if pos is not None else job.line
        return Problem(severity, code, message, jid, task_id, field, file, line)

    def error(code: str, message: str, pos: int | None = None, field: str | None = None) -> None:
        errors.append(problem("error", code, message, pos, field))

    kept: dict[str, int] = {}
    folded: dict[str, int] = {}  # warnings past the first few of a kind are only counted

    def warn(code: str, message: str, pos: int | None = None, field: str | None = None) -> None:
        if kept.get(code, 0) >= _KEEP:
            folded[code] = folded.get(code, 0) + 1
            return
        kept[code] = kept.get(code, 0) + 1
        warnings.append(problem("warning", code, message, pos, field))

    settings = job.settings()  # wire names; read without building the model
    # Advice in the language of the file: Python keywords for a flow, Batch's JSON fields
    # for the wire format.
    python = not job.from_json
    reserved = {}
    preparation = settings.get("jobPreparationTask")
    if preparation is not None:
        reserved[(preparation.get("id") or "jobpreparation").lower()] = "jobPreparationTask"
    release = settings.get("jobReleaseTask")
    if release is not None:
        reserved[(release.get("id") or "jobrelease").lower()] = "jobReleaseTask"
    manager = settings.get("jobManagerTask")
    if manager is not None:
        reserved[manager["id"].lower()] = "jobManagerTask"

    total = len(ids)
    commands, dep_columns, range_columns = job._commands, job._dep_ids, job._dep_ranges
    if not total and manager is None and not job.tasks_follow:
        error(
            "no-tasks",
            "the job has no tasks; Batch would keep it active for ever with nothing to run "
            + ("(add tasks with job.task or job.map)" if python else "(add a task array)"),
            None,
            "tasks",
        )
    specs, inputs_column = job._specs, job._inputs

    # Ids: one regex over all of them; per task only when that finds a bad one.
    if not _ALL_IDS.fullmatch("\n".join(ids) + "\n" if ids else ""):
        for pos, tid in enumerate(ids):
            if not is_id(tid):
                try:
                    check_id(tid)
                except ValueError as exc:
                    error("invalid-id", str(exc), pos, "id")
    # Job.add refuses duplicates, so its index has one key per task unless one slipped by.
    if len(job._by_key) != total or reserved:
        seen: dict[str, int] = {}
        for pos, tid in enumerate(ids):
            key = tid.lower()
            if key in seen:
                other = ids[seen[key]]
                error(
                    "duplicate-id",
                    f"another task has the id '{other}' (ids ignore case)",
                    pos,
                    "id",
                )
            else:
                seen[key] = pos
            if key in reserved:
                error("reserved-id", f"the job's {reserved[key]} already uses this id", pos, "id")
    if not all(commands):
        for pos, command in enumerate(commands):
            if not command:
                error("missing", "commandLine is required", pos, "commandLine")
    has_deps = any(dep_columns) or any(range_columns)
    if has_deps:
        for pos, dep_ids in enumerate(dep_columns):
            # Joined ids have one comma fewer than ids; a tuple sums its ids' lengths.
            if (
                len(dep_ids) > 999
                and (
                    len(dep_ids) - dep_ids.count(",")
                    if type(dep_ids) is str
                    else sum(map(len, dep_ids))
                )
                > TASK_IDS_CHAR_LIMIT
            ):
                error(
                    "TaskDependencyListTooLong",
                    f"the ids add up to more than {TASK_IDS_CHAR_LIMIT:,} characters; "
                    "name numeric tasks and use taskIdRanges",
                    pos,
                    "dependsOn.taskIds",
                )

    no_wall_clock = retries_no_wall = 0
    first_no_wall = first_retries_no_wall = -1
    job_actions: list[int] = []
    dependency_actions: list[int] = []
    job_retries = (settings.get("constraints") or {}).get("maxTaskRetryCount") or 0
    # A task without a wall clock gets one warning: the one about retries if it has some.
    if specs.count(None) == total:  # the common case of big flows: no per-task settings
        if job_retries:
            retries_no_wall, first_retries_no_wall = total, 0 if total else -1
        else:
            no_wall_clock, first_no_wall = total, 0 if total else -1
    else:
        for pos, spec_ in enumerate(specs):
            wall = retries = None
            if spec_:
                constraints = spec_.get("constraints")
                if constraints:
                    wall = constraints.get("maxWallClockTime")
                    retries = constraints.get("maxTaskRetryCount")
                conditions = spec_.get("exitConditions")
                if conditions:
                    has_job_action, has_dependency_action = _exit_actions(conditions)
                    if has_job_action:
                        job_actions.append(pos)
                    if has_dependency_action:
                        dependency_actions.append(pos)
                for n, out in enumerate(spec_.get("outputFiles") or ()):
                    _check_output_file(out, n, pos, warn)
            if wall is None:
                if (retries if retries is not None else job_retries) != 0:
                    retries_no_wall += 1
                    if first_retries_no_wall < 0:
                        first_retries_no_wall = pos
                else:
                    no_wall_clock += 1
                    if first_no_wall < 0:
                        first_no_wall = pos
    # Scripts run from the working directory: the same command line gets the same answer
    # unless the task stages files of its own.
    script_warnings: dict[str, str | None] = {}
    for pos, command in enumerate(commands):
        if "." not in command:
            continue
        spec_, inputs = specs[pos], inputs_column[pos]
        if spec_ or inputs:
            message = _missing_script(command, spec_, inputs, python)
        elif command in script_warnings:
            message = script_warnings[command]
        else:
            message = script_warnings[command] = _missing_script(command, None, (), python)
        if message:
            warn("missing-script", message, pos, "commandLine")
    # Shell syntax in a command line that runs without a shell.
    shell_warnings: dict[str, str | None] = {}
    for pos, command in enumerate(commands):
        if not _SHELL_CHARS.search(command):
            continue
        if command not in shell_warnings:
            shell_warnings[command] = _shell_syntax(command)
        message = shell_warnings[command]
        if message:
            warn("shell-syntax", message, pos, "commandLine")

    if existing is not None and settings.get("usesTaskDependencies") is not False:
        with_deps = next(
            (pos for pos in range(total) if dep_columns[pos] or range_columns[pos]), None
        )
        if with_deps is not None:
            stored = existing(jid)
            if stored is not None and not stored.uses_task_dependencies:
                error(
                    "dependencies-not-on-job",
                    f"job '{jid}' was created without usesTaskDependencies, so its tasks "
                    "cannot have dependencies (Batch cannot change it after creation)",
                    with_deps,
                    "after" if python else "dependsOn",
                )
    graph = Graph.of(job)
    unknown, incomplete = graph.unknown, graph.incomplete_ranges
    if (unknown or incomplete) and existing is not None:
        unknown, incomplete = _outside_the_flow(job, unknown, incomplete, existing)
    for pos, field, name in unknown:
        if name.lower() == ids[pos].lower():
            error("self-dependency", "a task cannot depend on itself", pos, field)
            continue
        close = did_you_mean(name, ids)
        hint = f" (did you mean '{close}'?)" if close else ""
        error(
            "unknown-dependency",
            f"depends on '{name}', which is not in job '{jid}'{hint}",
            pos,
            field,
        )
    for pos, n, start, end, missing in incomplete:
        what = "no task exists" if missing == end - start + 1 else f"{missing:,} ids do not exist"
        error(
            "unknown-dependency",
            f"range {start}..{end}: {what} in this range in "
            f"job '{jid}'; ranges match tasks whose id is a number ('7' or '007', not 'frame-7'), "
            "and the task would wait for the missing ones forever",
            pos,
            f"dependsOn.taskIdRanges[{n}]",
        )
    if not graph.ordered:
        for pos, ds in enumerate(graph.deps):
            if pos in ds:
                key = ids[pos].lower()
                where = next(
                    (
                        f"dependsOn.taskIds[{n}]"
                        for n, d in enumerate(dep_tuple(job._dep_ids[pos]))
                        if d.lower() == key
                    ),
                    "dependsOn.taskIdRanges",
                )
                error("self-dependency", "a task cannot depend on itself", pos, where)
        cycle = graph._longer_cycle()
        if cycle:
            names = " -> ".join(ids[i] for i in cycle)
            error(
                "cycle",
                f"dependencies form a cycle: {names} (each waits for the one before it)",
                cycle[0],
                "dependsOn",
            )

    stranded_files(job, graph, warn, python)
    unhanded_outputs(job, graph, warn, python)
    uses_task_dependencies = settings.get("usesTaskDependencies")
    if has_deps and uses_task_dependencies is False:
        error(
            "TaskDependenciesNotSpecifiedOnJob",
            "tasks have dependencies but the job sets usesTaskDependencies to false",
            None,
            "usesTaskDependencies",
        )
    if dependency_actions and uses_task_dependencies is False:
        error(
            "InvalidPropertyValue",
            "exitConditions sets dependencyAction but the job sets usesTaskDependencies to false",
            dependency_actions[0],
            "exitConditions",
        )
    on_failure = (settings.get("onTaskFailure") or "noaction").lower()
    if job_actions and on_failure != "performexitoptionsjobaction":
        error(
            "InvalidPropertyValue",
            f"exitConditions sets jobAction, which Batch accepts only when the job's onTaskFailure "
            f"is performExitOptionsJobAction ({len(job_actions):,} task(s), first shown)",
            job_actions[0],
            "exitConditions",
        )

    set_wall = "set wall_clock=" if python else "set constraints.maxWallClockTime"
    if no_wall_clock:
        warn(
            "no-wall-clock",
            f"{_count(no_wall_clock, total)} no maxWallClockTime; a hung task holds its "
            f"slot for ever ({set_wall})",
            first_no_wall,
            "constraints.maxWallClockTime",
        )
    if retries_no_wall:
        warn(
            "retries-without-wall-clock",
            f"{_count(retries_no_wall, total)} retries but no maxWallClockTime; retries "
            "only follow a non-zero exit, so a task that hangs holds its slot for ever and "
            f"is never retried ({set_wall}; a task killed at its wall clock is not retried "
            "either, so make the limit generous)",
            first_retries_no_wall,
            "constraints.maxWallClockTime",
        )
    if settings.get("onAllTasksComplete") is None:
        warn(
            "no-on-all-tasks-complete",
            "the job has no onAllTasksComplete; on Batch it stays active after its tasks finish "
            + (
                "(set on_all_tasks_complete='terminatejob')"
                if python
                else '(set "onAllTasksComplete": "terminatejob")'
            ),
            None,
            "onAllTasksComplete",
        )
    if settings.get("poolInfo") is None:
        warn(
            "no-pool",
            "the job names no pool; Azure Batch cannot create it without poolInfo (the local "
            "engine runs it anyway): "
            + ("set pool= on the Job" if python else "set poolInfo.poolId or pass --pool-id"),
            None,
            "poolInfo",
        )
    return errors + _fold(warnings, folded)


_KEEP = 3


def _fold(warnings: list[Problem], folded: dict[str, int]) -> list[Problem]:
    """The first warnings of each kind; the count of the others noted on the last one."""
    by_code: dict[str, list[Problem]] = {}
    for problem in warnings:
        by_code.setdefault(problem.code, []).append(problem)
    out: list[Problem] = []
    for code, found in by_code.items():
        more = folded.get(code, 0)
        if not more:
            out.extend(found)
            continue
        out.extend(found[:-1])
        last = found[-1]
        out.append(
            Problem(
                last.severity,
                code,
                f"{last.message} (and {more:,} more like this)",
                last.job_id,
                last.task_id,
                last.field,
                last.file,
                last.line,
            )
        )
    return out


def _count(count: int, total: int) -> str:
    if count == 1:
        return "this task has"
    if count == total:
        return f"all {total:,} tasks have"
    return f"{count:,} of {total:,} tasks (this one first) have"


def _exit_actions(conditions: dict[str, Any]) -> tuple[bool, bool]:
    """Whether exit conditions set any jobAction, and any dependencyAction."""
    options = [c.get("exitOptions") or {} for c in conditions.get("exitCodes") or ()]
    options += [c.get("exitOptions") or {} for c in conditions.get("exitCodeRanges") or ()]
    options += [
        conditions.get(k) or {} for k in ("preProcessingError", "fileUploadError", "default")
    ]
    return (
        any(o.get("jobAction") is not None for o in options),
        any(o.get("dependencyAction") is not None for o in options),
    )


def _check_output_file(out: dict[str, Any], n: int, pos: int, warn: Any) -> None:
    pattern = out.get("filePattern", "")
    field = f"outputFiles[{n}]"
    name = pattern.replace("\\", "/")
    if name in _TASK_DIR_FILES or (name.startswith("std") and "/" not in name and "*" in name):
        warn(
            "pattern-in-task-dir",
            f"filePattern '{pattern}' is matched in the working directory, but Batch writes "
            f"{'it' if name in _TASK_DIR_FILES else 'stdout.txt and stderr.txt'} to the task "
            f"directory above it (did you mean '../{name}'?)",
            pos,
            f"{field}.filePattern",
        )
    container = (out.get("destination") or {}).get("container") or {}
    url = container.get("containerUrl", "")
    if url and "sig=" not in url and not container.get("identityReference"):
        warn(
            "no-write-credential",
            "containerUrl has no SAS signature (sig=) and there is no identityReference; "
            "the upload will be refused",
            pos,
            f"{field}.destination.container.containerUrl",
        )


def _staged_names(spec: dict[str, Any] | None, inputs: tuple[str, ...]) -> tuple[set[str], bool]:
    """File paths a task's resource files and inputs put in its working dir; True if unknown."""
    names = {posixpath.normpath(p) for p in inputs}
    names |= {posixpath.basename(p) for p in inputs}
    opaque = False
    for resource in (spec or {}).get("resourceFiles") or ():
        if resource.get("httpUrl"):
            names.add(posixpath.normpath(resource.get("filePath", "")))
        else:
            opaque = True  # a whole container or prefix: we cannot know its files here
    return names, opaque


def _missing_script(
    command: str, spec: dict[str, Any] | None, inputs: tuple[str, ...], python: bool
) -> str | None:
    """The warning for a script the command runs that nothing stages, if there is one."""
    names, opaque = _staged_names(spec, inputs)
    if opaque:
        return None
    for match in _SCRIPT.finditer(command):
        script = match.group(1)
        start = match.start(1)
        before = command[max(0, start - 1) : start]
        if before in ("/", "$") or posixpath.normpath(script) in names:
            continue
        if re.search(rf"(?:-O|-o|>|wget|curl)\s*\S*{re.escape(script)}", command[:start]):
            continue
        return (
            f"commandLine runs '{script}' from the task's working directory, but no "
            "resourceFile or input puts it there (each task starts in an empty directory; "
            + ("add it to inputs=[...] or resource_files=" if python else "add a resourceFile")
            + ")"
        )
    return None


# Characters a shell would act on; a command line without any of them needs no closer look.
_SHELL_CHARS = re.compile(r"[$><|;&*`]")
_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "fish", "cmd", "cmd.exe", "powershell", "pwsh"}
)


def _shell_syntax(command: str) -> str | None:
    """The warning for shell syntax in a command line that runs without a shell, if any.

    Batch starts the program of a command line directly (no shell, no expansion), so
    `$HOME`, redirections, pipes, `&&`, `;` and globs reach the program as plain text.
    Quoted text is skipped as a shell would treat it (nothing inside '...', only `$` and
    backquotes inside "...").
    """
    first = command.split(None, 1)[0] if command.strip() else ""
    if posixpath.basename(first.strip("'\"")).lower() in _SHELLS:
        return None
    found: list[str] = []
    quote = ""
    i, n = 0, len(command)
    while i < n:
        c = command[i]
        if quote == "'":
            if c == "'":
                quote = ""
        elif c == "\\":
            i += 1  # an escaped character is literal
        elif quote == '"' and c == '"':
            quote = ""
        elif c == "$" and i + 1 < n and (command[i + 1].isalpha() or command[i + 1] in "_{("):
            end = i + 1
            while end < n and (command[end].isalnum() or command[end] in "_{}("):
                end += 1
            found.append(command[i:end].rstrip("("))
        elif c == "`":
            found.append("`...`")
        elif quote:
            pass
        elif c in "'\"":
            quote = c
        elif c in "|&":
            two = command[i : i + 2]
            found.append(two if two in ("||", "&&") else c)
            i += len(two) - 1 if two in ("||", "&&") else 0
        elif c in "<>;*":
            found.append(c)
        i += 1
    if not found:
        return None
    shown = ", ".join(dict.fromkeys(found))
    quoted = command.replace("'", "'\\''")
    return (
        f"commandLine uses shell syntax ({shown}) but runs without a shell, as on Batch: the "
        f"program gets it as plain text; run it in a shell: /bin/bash -c '{quoted}'"
    )


def input_problems(job: Job, *, file: str | None = None) -> list[Problem]:
    """An error for each task whose `inputs=` `submit` would refuse (the same check, the
    same message: `batchflow.storage.check_inputs`), one per distinct list of inputs."""
    if not any(job._inputs):
        return []  # and the storage package stays unimported
    from pathlib import Path

    from batchflow.exceptions import FlowError
    from batchflow.storage.local import check_inputs

    base = Path(job.inputs_dir())
    found: list[Problem] = []
    first: dict[tuple[str, ...], int] = {}
    more: dict[tuple[str, ...], int] = {}
    for pos, inputs in enumerate(job._inputs):
        if not inputs:
            continue
        if inputs in first:
            more[inputs] = more.get(inputs, 0) + 1
            continue
        first[inputs] = pos
    for inputs, pos in first.items():
        try:
            check_inputs(inputs, base, job_id=job.id, task_id=job._ids[pos])
        except FlowError as exc:
            extra = more.get(inputs, 0)
            message = exc.message + (
                f" (and {extra:,} more task(s) with the same inputs)" if extra else ""
            )
            found.append(
                Problem(
                    "error",
                    "input-not-found" if isinstance(exc, FileNotFoundError) else "inputs",
                    message,
                    job.id,
                    job._ids[pos],
                    exc.field,
                    file or job.source,
                    job._lines[pos],
                )
            )
    return found


def _outside_the_flow(
    job: Job,
    unknown: list[tuple[int, str, str]],
    incomplete: list[tuple[int, int, int, int, int]],
    existing: Callable[[str], JobTasks | None],
) -> tuple[list[tuple[int, str, str]], list[tuple[int, int, int, int, int]]]:
    """The dependencies outside the flow that the stored job does not satisfy either:
    `unknown` ids and `incomplete` ranges (as `Graph` gives them), less what the job
    already has. A task naming itself stays unknown."""
    ids = job._ids
    names = sorted({name.lower() for pos, _, name in unknown if name.lower() != ids[pos].lower()})
    if not names and not incomplete:
        return unknown, incomplete
    stored = existing(job.id)
    if stored is None:
        return unknown, incomplete
    have = stored.having(names) if names else set()
    unknown = [u for u in unknown if u[2].lower() not in have or u[2].lower() == ids[u[0]].lower()]
    if not incomplete:
        return unknown, incomplete
    numeric = numeric_index(ids)
    keys = [k for k, _ in numeric]
    still: list[tuple[int, int, int, int, int]] = []
    for pos, n, start, end, _ in incomplete:
        mine = set(keys[bisect_left(keys, start) : bisect_right(keys, end)])
        absent = end - start + 1 - len(mine | stored.numbers(start, end))
        if absent:
            still.append((pos, n, start, end, absent))
    return unknown, still


def check(job: Job, *, file: str | None = None) -> list[Problem]:
    """Validate `job`; raise `FlowInvalid` with every problem if there is an error."""
    problems = validate(job, file=file)
    if any(p.severity == "error" for p in problems):
        raise FlowInvalid(problems)
    return problems
