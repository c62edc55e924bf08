"""The Python way to write a flow: jobs, tasks, sweeps and dependencies.

```python
from batchflow import Job

job = Job("pipeline-job", pool="my-compute-pool", max_task_retry_count=3,
          max_wall_clock_time="24h")
download = job.task("download-data", "bash -c 'curl -O $URL && unzip dataset.zip'")
process = job.task("process-data", "python3 process.py", after=download,
                   inputs=["process.py"], outputs=["output.csv"], wall_clock="1h", retries=3)
frames = job.map("frame-{i:03d}", "render --frame {i}", i=range(1, 101))
job.task("merge", "python3 merge.py", after=frames)
```

`inputs=` also takes tasks and `map` groups: the child then waits for them and gets the
files their `outputs=` collected, in its working directory at
`<job id>/<parent task id>/<path>` (`Job.handoffs` tells a backend which).

Mistakes raise at the line that made them (a duplicate id, an unknown dependency, a bad
duration). A task is a small object (id, command line, dependency ids and a shared dict of
its other wire fields), so a job of a million tasks fits in a few hundred megabytes;
`Task.model()` gives the full pydantic `TaskSpec` when one is needed.

pydantic is imported only when a flow needs it (a resource file, exit conditions, a job
manager task, `Job.spec`...): a job of plain settings and tasks is checked without it
(`batchflow.rules`), which is most of what `batchflow validate` would otherwise spend.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import os
import string
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

from batchflow.durations import to_wire_duration
from batchflow.exceptions import DuplicateTaskError, InvalidFieldError, UnknownTaskError
from batchflow.names import check_id, did_you_mean, is_id
from batchflow.rules import plain_job

if TYPE_CHECKING:
    from pydantic import ValidationError

    from batchflow import model

__all__ = ["After", "Inputs", "Job", "Task", "TaskGroup"]

DurationLike: TypeAlias = str | timedelta | int | float


_FIELDS = ("id", "command_line", "dep_ids", "dep_ranges", "spec", "inputs", "outputs", "line")

#: How the task table keeps a task's dependency ids: valid ids joined by commas (a string,
#: which the cyclic GC never tracks: a million small tuples would make every collection
#: slower), or a tuple for ids that could hold a comma (read from JSON, not yet validated).
#: A joined string is only ever made by `after=` of tasks already in the same job, so it
#: names tasks defined earlier (the graph relies on that to skip its order check).
DepIds: TypeAlias = str | tuple[str, ...]


def dep_tuple(value: DepIds) -> tuple[str, ...]:
    """The dependency ids of a task-table entry, as a tuple."""
    if type(value) is str:
        return tuple(value.split(",")) if value else ()
    return value  # type: ignore[return-value]


_new = object.__new__


class Task:
    """One task of a job: an id, a command line, its dependencies and other wire fields.

    Create tasks with `Job.task` or `Job.map`; pass them to `after=` of later tasks.
    A task of a job is a light handle on the job's task table (a row number), so a job
    of a million tasks holds a few lists, not a million objects; attributes read and
    write that row. `Task(...)` made by hand holds its own values until `Job.add`.
    """

    __slots__ = ("_job", "_own", "seq")

    def __init__(
        self,
        id: str,
        command_line: str,
        dep_ids: tuple[str, ...] = (),
        dep_ranges: tuple[tuple[int, int], ...] = (),
        spec: dict[str, Any] | None = None,
        inputs: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        seq: int = 0,
        line: int | None = None,
    ) -> None:
        self._job: Job | None = None
        self._own: list[Any] | None = [
            id,
            command_line,
            dep_ids,
            dep_ranges,
            spec,
            inputs,
            outputs,
            line,
        ]
        self.seq = seq

    @classmethod
    def _row(cls, job: Job, seq: int) -> Task:
        task = _new(cls)
        task._job, task._own, task.seq = job, None, seq
        return task

    def _column(self, index: int) -> list[Any]:
        job = self._job
        assert job is not None
        return job._columns[index]

    def _get(self, index: int) -> Any:
        own = self._own
        if own is not None:
            return own[index]
        return self._column(index)[self.seq]

    def _set(self, index: int, value: Any) -> None:
        own = self._own
        if own is not None:
            own[index] = value
        else:
            self._column(index)[self.seq] = value

    @property
    def id(self) -> str:
        """The task id (1 to 64 letters, digits, '-' and '_')."""
        return self._get(0)  # type: ignore[no-any-return]

    @property
    def command_line(self) -> str:
        """The program and its arguments; run without a shell, as Batch does."""
        return self._get(1)  # type: ignore[no-any-return]

    @property
    def dep_ids(self) -> tuple[str, ...]:
        """Ids of the tasks this one waits for (dependsOn.taskIds)."""
        return dep_tuple(self._get(2))

    @dep_ids.setter
    def dep_ids(self, value: tuple[str, ...]) -> None:
        self._set(2, tuple(value))

    @property
    def dep_ranges(self) -> tuple[tuple[int, int], ...]:
        """(start, end) ranges of numeric ids this task waits for (dependsOn.taskIdRanges)."""
        return self._get(3)  # type: ignore[no-any-return]

    @property
    def spec(self) -> dict[str, Any] | None:
        """Wire fields other than id, commandLine and dependsOn (may be shared by a map)."""
        return self._get(4)  # type: ignore[no-any-return]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Local files to stage into the working directory (batchflow, not Batch)."""
        return self._get(5)  # type: ignore[no-any-return]

    @property
    def outputs(self) -> tuple[str, ...]:
        """Glob patterns to collect from the working directory (batchflow, not Batch)."""
        return self._get(6)  # type: ignore[no-any-return]

    @property
    def line(self) -> int | None:
        """The line of the flow file that defined the task, when known."""
        return self._get(7)  # type: ignore[no-any-return]

    @property
    def handoffs(self) -> tuple[str, ...]:
        """Ids of the tasks whose collected `outputs=` this one is handed (see `Job.handoffs`)."""
        job = self._job
        if self._own is not None or job is None:
            return ()
        return job.handoffs(self.seq)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        if self._own is not None or other._own is not None:
            return self is other
        return self._job is other._job and self.seq == other.seq

    def __hash__(self) -> int:
        if self._own is not None:
            return id(self)
        return hash((id(self._job), self.seq))

    def __repr__(self) -> str:
        return f"Task({self.id!r}, {self.command_line!r})"

    def to_wire(self) -> dict[str, Any]:
        """The task as the Add Task API takes it (camelCase keys)."""
        return _wire(self.id, self.command_line, self.dep_ids, self.dep_ranges, self.spec)

    def model(self) -> model.TaskSpec:
        """The full, validated pydantic model of this task."""
        from batchflow.model import TaskSpec

        return TaskSpec.model_validate(self.to_wire())


def _wire(
    task_id: str,
    command_line: str,
    dep_ids: tuple[str, ...],
    dep_ranges: tuple[tuple[int, int], ...],
    spec: dict[str, Any] | None,
) -> dict[str, Any]:
    wire: dict[str, Any] = {"id": task_id, "commandLine": command_line}
    if spec:
        wire.update(spec)
    if dep_ids or dep_ranges:
        depends: dict[str, Any] = {}
        if dep_ids:
            depends["taskIds"] = list(dep_ids)
        if dep_ranges:
            depends["taskIdRanges"] = [{"start": s, "end": e} for s, e in dep_ranges]
        wire["dependsOn"] = depends
    return wire


class _TaskList(Sequence[Task]):
    """`Job.tasks`: the job's task table seen as Task handles, in definition order."""

    __slots__ = ("_job",)

    def __init__(self, job: Job) -> None:
        self._job = job

    def __len__(self) -> int:
        return len(self._job._ids)

    def __getitem__(self, index: Any) -> Any:
        size = len(self._job._ids)
        if isinstance(index, slice):
            return [Task._row(self._job, i) for i in range(*index.indices(size))]
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("task index out of range")
        return Task._row(self._job, index)

    def __iter__(self) -> Iterator[Task]:
        job = self._job
        row = Task._row
        return (row(job, i) for i in range(len(job._ids)))


class TaskGroup(Sequence[Task]):
    """The tasks made by one `Job.map` call; `after=group` waits for all of them."""

    __slots__ = ("_tasks", "name")

    def __init__(self, tasks: Sequence[Task], name: str) -> None:
        self._tasks = tuple(tasks)
        self.name = name

    def __getitem__(self, index: Any) -> Any:
        return self._tasks[index]

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __repr__(self) -> str:
        return f"TaskGroup({self.name!r}, {len(self)} tasks)"

    def id_range(self) -> tuple[int, int] | None:
        """(start, end) if the ids are the contiguous integers start..end, else None."""
        numbers = []
        for task in self._tasks:
            if not task.id.isdigit():
                return None
            numbers.append(int(task.id))
        if not numbers:
            return None
        low, high = min(numbers), max(numbers)
        if high - low + 1 != len(numbers) or len(set(numbers)) != len(numbers):
            return None
        return low, high


#: What `after=` accepts: a task, its id, a group from `map`, or a list of those.
After: TypeAlias = Task | str | TaskGroup | Iterable["Task | str | TaskGroup"] | None
#: What `inputs=` accepts: local paths, and tasks or `map` groups whose collected
#: `outputs=` are handed to the task (one path, task or group may be given alone).
Inputs: TypeAlias = (
    str
    | os.PathLike[str]
    | Task
    | TaskGroup
    | Iterable["str | os.PathLike[str] | Task | TaskGroup"]
)

_TASK_OPTIONS = frozenset(
    (
        "after inputs outputs wall_clock retries retention env resource_files output_files "
        "exit_conditions required_slots display_name user_identity container"
    ).split()
)


def _template_fields(template: str) -> set[str]:
    """The parameter names a format template uses (`{i:03d}` -> `i`)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return set()
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in parsed if name}


def _caller_line(depth: int = 2) -> int:
    return sys._getframe(depth).f_lineno


def _suggest(name: str, known: Iterable[str]) -> str:
    close = did_you_mean(name, known)
    return f" (did you mean '{close}'?)" if close else ""


def _wire_list(name: str, value: Any) -> list[dict[str, Any]]:
    """`value` validated as a list of the model `name` (ResourceFile, OutputFile)."""
    items: list[Any] = _list_adapter(name).validate_python(value)
    return [item.to_wire() for item in items]


@functools.cache
def _list_adapter(name: str) -> Any:
    from pydantic import TypeAdapter

    from batchflow import model

    kind: Any = list[getattr(model, name)]  # type: ignore[misc]
    return TypeAdapter(kind)


def _wire_model(name: str, value: Any) -> dict[str, Any]:
    """`value` (a model or a mapping) validated as the model `name`, in wire form."""
    from pydantic import BaseModel

    from batchflow import model

    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    cls: type[model.WireModel] = getattr(model, name)
    return cls.model_validate(value).to_wire()


def _is_validation_error(exc: BaseException) -> TypeGuard[ValidationError]:
    """Whether `exc` is pydantic's (which, if pydantic was never imported, no model raised)."""
    core = sys.modules.get("pydantic_core")
    return core is not None and isinstance(exc, core.ValidationError)


def _env_list(env: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": str(k), "value": str(v)} for k, v in env.items()]


def _field_error(exc: ValidationError, **where: Any) -> InvalidFieldError:
    err = exc.errors()[0]
    path = ".".join(str(part) for part in err["loc"])
    prefix = where.pop("field")
    field = ".".join(part for part in (prefix, path) if part)
    message = err["msg"].removeprefix("Value error, ")
    return InvalidFieldError(message, field=field, **where)


class Job:
    """A Batch job and its tasks, defined in Python.

    Job-level settings use Batch's names in snake_case (`max_task_retry_count`,
    `on_all_tasks_complete`, ...); `pool` is the pool id (or the logical pool name
    from the stack outputs). `usesTaskDependencies` is switched on for you when a
    task has `after=`.
    """

    def __init__(
        self,
        id: str,
        *,
        pool: str | None = None,
        priority: int | None = None,
        max_task_retry_count: int | None = None,
        max_wall_clock_time: DurationLike | None = None,
        max_parallel_tasks: int | None = None,
        on_all_tasks_complete: str | None = None,
        on_task_failure: str | None = None,
        env: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        display_name: str | None = None,
        allow_task_preemption: bool | None = None,
        uses_task_dependencies: bool | None = None,
        job_manager: model.JobManagerTask | Mapping[str, Any] | None = None,
        preparation: model.JobPreparationTask | Mapping[str, Any] | None = None,
        release: model.JobReleaseTask | Mapping[str, Any] | None = None,
    ) -> None:
        wire: dict[str, Any] = {"id": id}
        if display_name is not None:
            wire["displayName"] = display_name
        if priority is not None:
            wire["priority"] = priority
        if allow_task_preemption is not None:
            wire["allowTaskPreemption"] = allow_task_preemption
        if max_parallel_tasks is not None:
            wire["maxParallelTasks"] = max_parallel_tasks
        constraints: dict[str, Any] = {}
        if max_wall_clock_time is not None:
            constraints["maxWallClockTime"] = max_wall_clock_time
        if max_task_retry_count is not None:
            constraints["maxTaskRetryCount"] = max_task_retry_count
        if constraints:
            wire["constraints"] = constraints
        for key, value in (
            ("jobManagerTask", job_manager),
            ("jobPreparationTask", preparation),
            ("jobReleaseTask", release),
        ):
            if value is not None:
                from batchflow.model import WireModel

                wire[key] = value.to_wire() if isinstance(value, WireModel) else value
        if env:
            wire["commonEnvironmentSettings"] = _env_list(env)
        if pool is not None:
            wire["poolInfo"] = {"poolId": pool}
        if on_all_tasks_complete is not None:
            wire["onAllTasksComplete"] = on_all_tasks_complete
        if on_task_failure is not None:
            wire["onTaskFailure"] = on_task_failure
        if metadata:
            wire["metadata"] = [{"name": str(k), "value": str(v)} for k, v in metadata.items()]
        if uses_task_dependencies is not None:
            wire["usesTaskDependencies"] = uses_task_dependencies
        if plain_job(wire):  # the model would take it as it is: built when needed
            if "maxWallClockTime" in constraints:  # as the model spells it (ISO 8601)
                constraints["maxWallClockTime"] = to_wire_duration(max_wall_clock_time)  # type: ignore[arg-type]
            self._init(None, line=_caller_line(), wire=wire)
            return
        from pydantic import ValidationError

        from batchflow.model import JobSpec

        try:
            spec = JobSpec.model_validate(wire)
        except ValidationError as exc:
            raise _field_error(exc, field="", job_id=id) from None
        self._init(spec, line=_caller_line())

    def _init(
        self,
        spec: model.JobSpec | None,
        *,
        line: int | None,
        wire: dict[str, Any] | None = None,
    ) -> None:
        """`spec`, or the plain settings (`batchflow.rules.plain_job`) to build it from."""
        self._spec = spec
        self._wire = wire
        self.id: str = spec.id if spec is not None else wire["id"]  # type: ignore[index]
        self.line = line
        #: The file the job was defined in, set by the loader.
        self.source: str | None = None
        #: Set by the loader for JSON (Batch's wire format): advice names JSON fields.
        self.from_json = False
        #: Set by the loader for a job document without `tasks` (a Job-Add body, as
        #: `az batch job create` takes): its tasks are added later, so none is no error.
        self.tasks_follow = False
        #: Set by the loader for a task-only file (`az batch task create --json-file`):
        #: submitted to an existing job, it only adds tasks (Batch's Add Task Collection).
        self.tasks_only = False
        # The task table: one list per field, a row per task (see Task).
        self._columns: list[list[Any]] = [[] for _ in _FIELDS]
        (
            self._ids,
            self._commands,
            self._dep_ids,
            self._dep_ranges,
            self._specs,
            self._inputs,
            self._outputs,
            self._lines,
        ) = self._columns
        #: Lowercased id -> row, as Batch compares ids case-insensitively.
        self._by_key: dict[str, int] = {}
        self._groups: list[TaskGroup] = []
        #: Row -> ids of the tasks whose outputs that task is handed (`inputs=[task]`);
        #: sparse, and one tuple shared by the tasks of a `map`.
        self._handoffs: dict[int, tuple[str, ...]] = {}
        self._view = _TaskList(self)

    @classmethod
    def from_spec(cls, spec: model.JobSpec, *, line: int | None = None) -> Job:
        """A job from a validated `JobSpec` (its `tasks`, if any, are not added)."""
        job = cls.__new__(cls)
        job._init(spec.model_copy(update={"tasks": None}), line=line)
        return job

    # -- reading ---------------------------------------------------------------------

    @property
    def spec(self) -> model.JobSpec:
        """The job's settings as the flow model (built on first use for a plain job)."""
        if self._spec is None:
            from batchflow.model import JobSpec

            self._spec = JobSpec.model_validate(self._wire)
        return self._spec

    @spec.setter
    def spec(self, value: model.JobSpec) -> None:
        self._spec = value

    def default_pool(self, pool_id: str) -> None:
        """Run on `pool_id` when the job names no pool (the CLI's `--pool-id`)."""
        if self.settings().get("poolInfo") is not None:
            return
        if self._spec is None:
            assert self._wire is not None
            wire = {**self._wire, "poolInfo": {"poolId": pool_id}}
            if plain_job(wire):
                self._wire = wire
                return
        from batchflow.model import PoolInfo

        self.spec = self.spec.model_copy(update={"pool_info": PoolInfo(pool_id=pool_id)})

    def settings(self) -> dict[str, Any]:
        """The job's settings in wire form (camelCase, only those set; without tasks), read
        without building the model when it was not built yet."""
        if self._spec is None:
            assert self._wire is not None
            return self._wire
        return self._spec.to_wire()

    @property
    def tasks(self) -> Sequence[Task]:
        """The tasks in the order they were defined."""
        return self._view

    @property
    def groups(self) -> Sequence[TaskGroup]:
        """The groups made by `map`, in order."""
        return self._groups

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._view)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {len(self._ids)} tasks)"

    def inputs_dir(self) -> str:
        """The folder `inputs=` are relative to: the flow file's, else the current one."""
        if self.source:
            return os.path.dirname(os.path.abspath(self.source))
        return os.getcwd()

    def get(self, task_id: str) -> Task | None:
        """The task with this id (compared case-insensitively, as Batch does), or None."""
        seq = self._by_key.get(task_id.lower())
        return None if seq is None else Task._row(self, seq)

    def handoffs(self, pos: int) -> tuple[str, ...]:
        """Ids of the parent tasks whose collected `outputs=` task number `pos` is handed.

        `pos` is the task's position in `tasks` (definition order); the tuple is empty when
        the task was handed nothing. A task is handed its parents' outputs by naming them
        (or their `map` group) in `inputs=`; it also depends on them, so they are in its
        `dependsOn` and it starts after they succeeded. Each parent's files appear in the
        child's working directory at `<job id>/<parent id>/<path as collected>`: locally
        copied (hard-linked where possible) from the results folder; on Azure Batch a
        resource file per parent with the outputs container's `storageContainerUrl` and
        `blobPrefix` `<job id>/<parent id>/`, whose download keeps the blob's full name.
        The hand-off is batchflow's, not Batch's: `to_wire()` does not carry it.
        """
        return self._handoffs.get(pos, ())

    @property
    def uses_task_dependencies(self) -> bool:
        """Whether the job's tasks may depend on each other (explicit, or any `after=`)."""
        explicit = self.settings().get("usesTaskDependencies")
        if explicit is not None:
            return bool(explicit)
        return (
            any(self._dep_ids)
            or any(self._dep_ranges)
            or any(spec and "exitConditions" in spec for spec in self._specs)
        )

    # -- defining --------------------------------------------------------------------

    def add(self, task: Task) -> Task:
        """Add a ready-made task (duplicate ids raise, compared case-insensitively).

        The task becomes a row of this job; the handle passed in now refers to it.
        """
        handed: tuple[str, ...] = ()
        if task._own is not None:
            values = list(task._own)
        else:
            assert task._job is not None
            values = [column[task.seq] for column in task._job._columns]
            values[2] = dep_tuple(values[2])  # its earlier tasks are another job's
            handed = task._job.handoffs(task.seq)
        task_id = values[0]
        key = task_id.lower()
        if key in self._by_key:
            other = self._ids[self._by_key[key]]
            same = "the same id" if other == task_id else f"'{other}' (ids ignore case)"
            raise DuplicateTaskError(
                f"a task with {same} is already in the job",
                job_id=self.id,
                task_id=task_id,
                field="id",
                line=values[7],
            )
        seq = len(self._ids)
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._by_key[key] = seq
        if handed:
            self._handoffs[seq] = handed
        task._job, task._own, task.seq = self, None, seq
        return task

    def _resolve_after(
        self, after: After, task_id: str
    ) -> tuple[DepIds, tuple[tuple[int, int], ...]]:
        if after is None:
            return (), ()
        if type(after) is Task:
            after = (after,)
        if type(after) is list or type(after) is tuple:
            # The common case, kept cheap: tasks of this job, found by position.
            ids_column = self._ids
            try:
                direct = [ids_column[t.seq] for t in after if t._job is self]
            except AttributeError:  # not only tasks: the general path below
                direct = []
            if direct and len(direct) == len(after):
                joined = ",".join(direct)
                if joined.count(",") == len(direct) - 1:
                    return joined, ()
                return tuple(direct), ()  # an id with a comma (added by hand): keep it whole
        if isinstance(after, str | TaskGroup):
            items: Iterable[Any] = (after,)
        elif isinstance(after, Iterable):
            items = after
        else:
            items = (after,)
        ids: list[str] = []
        ranges: list[tuple[int, int]] = []
        for item in items:
            if isinstance(item, Task):
                ids.append(item.id)
            elif isinstance(item, TaskGroup):
                span = item.id_range()
                if span is not None and self._range_is_exact(span, len(item)):
                    ranges.append(span)
                else:
                    ids.extend(t.id for t in item)
            elif isinstance(item, str):
                known = self.get(item)
                if known is None:
                    raise UnknownTaskError(
                        f"'{item}' is not in job '{self.id}'" + _suggest(item, self._ids),
                        job_id=self.id,
                        task_id=task_id,
                        field="after",
                    )
                ids.append(known.id)
            else:
                raise InvalidFieldError(
                    "after= takes tasks, task ids or the result of map(), "
                    f"not {type(item).__name__}",
                    job_id=self.id,
                    task_id=task_id,
                    field="after",
                )
        for dep in ids:
            if dep.lower() not in self._by_key:
                raise UnknownTaskError(
                    f"'{dep}' is not in job '{self.id}'" + _suggest(dep, self._ids),
                    job_id=self.id,
                    task_id=task_id,
                    field="after",
                )
        return tuple(ids), tuple(ranges)

    def _split_inputs(
        self, inputs: Inputs, task_id: str | None, line: int | None
    ) -> tuple[tuple[str, ...], tuple[str, ...], list[Task | TaskGroup]]:
        """(local paths, ids of the handed parents, the handed tasks and groups) of an
        `inputs=` value; a handed task must be of this job and declare `outputs=`."""
        if isinstance(inputs, str | os.PathLike | Task | TaskGroup):
            inputs = (inputs,)  # one path or one handle alone (a str is no list of paths)
        paths: list[str] = []
        handles: list[Task | TaskGroup] = []
        for item in inputs:
            if isinstance(item, str):
                paths.append(item)
            elif isinstance(item, Task | TaskGroup):
                handles.append(item)
            elif isinstance(item, os.PathLike):
                paths.append(os.fspath(item))
            else:
                raise InvalidFieldError(
                    "inputs= takes file paths, tasks and the result of map(), "
                    f"not {type(item).__name__}",
                    job_id=self.id,
                    task_id=task_id,
                    field="inputs",
                    line=line,
                )
        handed: dict[str, None] = {}
        for handle in handles:
            for parent in (handle,) if isinstance(handle, Task) else handle:
                if parent._job is not self:
                    raise InvalidFieldError(
                        f"'{parent.id}' is not a task of job '{self.id}' (add it to the job "
                        "first; only a task of the same job can hand over its outputs)",
                        job_id=self.id,
                        task_id=task_id,
                        field="inputs",
                        line=line,
                    )
                if not self._outputs[parent.seq]:
                    raise InvalidFieldError(
                        f"'{parent.id}' declares no outputs=, so it has nothing to hand over; "
                        f"add outputs=[...] to '{parent.id}', or wait for it with after= "
                        "instead",
                        job_id=self.id,
                        task_id=task_id,
                        field="inputs",
                        line=line,
                    )
                handed[parent.id] = None
        return tuple(paths), tuple(handed), handles

    def _with_handed(
        self,
        dep_ids: DepIds,
        dep_ranges: tuple[tuple[int, int], ...],
        handles: list[Task | TaskGroup],
        task_id: str,
    ) -> tuple[DepIds, tuple[tuple[int, int], ...]]:
        """`after=`'s dependencies and those the hand-off implies, each named once."""
        more_ids, more_ranges = self._resolve_after(handles, task_id)
        ranges = list(dep_ranges)
        ranges += [span for span in more_ranges if span not in ranges]
        ids = list(dict.fromkeys((*dep_tuple(dep_ids), *dep_tuple(more_ids))))
        if ranges:  # an id a range already covers (Batch matches ranges by number)
            ids = [i for i in ids if not (i.isdigit() and any(s <= int(i) <= e for s, e in ranges))]
        joined = ",".join(ids)
        # Every id names a task defined earlier, so they may be joined (see DepIds).
        if joined.count(",") == len(ids) - 1:
            return joined, tuple(ranges)
        return tuple(ids), tuple(ranges)

    def _range_is_exact(self, span: tuple[int, int], size: int) -> bool:
        """True if no task outside the group has a numeric id inside `span`."""
        start, end = span
        count = 0
        for task_id in self._ids:
            if task_id.isdigit() and start <= int(task_id) <= end:
                count += 1
        return count == size

    def task(
        self,
        id: str,
        command_line: str,
        *,
        after: After = None,
        inputs: Inputs = (),
        outputs: Iterable[str] = (),
        wall_clock: DurationLike | None = None,
        retries: int | None = None,
        retention: DurationLike | None = None,
        env: Mapping[str, Any] | None = None,
        resource_files: Iterable[model.ResourceFile | Mapping[str, Any]] | None = None,
        output_files: Iterable[model.OutputFile | Mapping[str, Any]] | None = None,
        exit_conditions: model.ExitConditions | Mapping[str, Any] | None = None,
        required_slots: int | None = None,
        display_name: str | None = None,
        user_identity: model.UserIdentity | Mapping[str, Any] | None = None,
        container: model.TaskContainerSettings | Mapping[str, Any] | None = None,
        _line: int | None = None,
        _spec: dict[str, Any] | None = None,
        _handed: tuple[tuple[str, ...], DepIds, tuple[tuple[int, int], ...]] | None = None,
    ) -> Task:
        """Add a task that runs `command_line` (no shell: write `bash -c '...'` for one).

        `after=` waits for tasks, ids or `map` groups; `inputs=` are local files staged
        into the working directory and `outputs=` glob patterns collected from it;
        `wall_clock`, `retries` and `retention` set the task's constraints.

        `inputs=` also takes tasks and `map` groups of this job: the task waits for them
        (as with `after=`) and gets the files their `outputs=` collected, at
        `<job id>/<parent id>/<path>` in its working directory (see `Job.handoffs`).
        `job.task("merge", "/bin/sh -c 'cat $AZ_BATCH_JOB_ID/*/part.txt'", inputs=[parts])`
        """
        line = _line if _line is not None else sys._getframe(1).f_lineno
        try:
            if not is_id(id):
                check_id(id)  # raises with the reason
        except (ValueError, TypeError) as exc:
            raise InvalidFieldError(
                str(exc), job_id=self.id, task_id=id, field="id", line=line
            ) from None
        if not command_line or not isinstance(command_line, str):
            raise InvalidFieldError(
                "commandLine is required (the program to run and its arguments)",
                job_id=self.id,
                task_id=id,
                field="commandLine",
                line=line,
            )
        if _spec is None and (
            wall_clock is not None
            or retries is not None
            or retention is not None
            or env
            or resource_files is not None
            or output_files is not None
            or exit_conditions is not None
            or required_slots is not None
            or display_name is not None
            or user_identity is not None
            or container is not None
        ):
            _spec = self._task_spec(
                id,
                line,
                wall_clock=wall_clock,
                retries=retries,
                retention=retention,
                env=env,
                resource_files=resource_files,
                output_files=output_files,
                exit_conditions=exit_conditions,
                required_slots=required_slots,
                display_name=display_name,
                user_identity=user_identity,
                container=container,
            )
        handed: tuple[str, ...] = ()
        paths: tuple[str, ...] = ()
        dep_ids: DepIds
        dep_ranges: tuple[tuple[int, int], ...]
        if _handed is not None:  # from map: split and resolved once for all its tasks
            handed, dep_ids, dep_ranges = _handed
            paths = inputs  # type: ignore[assignment]  # map's are a tuple of paths
        else:
            handles: list[Task | TaskGroup] = []
            if type(inputs) is tuple and all(type(i) is str for i in inputs):
                paths = inputs  # the common case (and map's): paths alone
            elif inputs:
                paths, handed, handles = self._split_inputs(inputs, id, line)
            if after is None:
                dep_ids, dep_ranges = "", ()
            else:
                dep_ids, dep_ranges = self._resolve_after(after, id)
            if handles:
                dep_ids, dep_ranges = self._with_handed(dep_ids, dep_ranges, handles, id)
        key = id.lower()
        if key in self._by_key:  # let add() raise DuplicateTaskError with the details
            return self.add(Task(id, command_line, line=line))
        seq = len(self._ids)
        self._ids.append(id)
        self._commands.append(command_line)
        self._dep_ids.append(dep_ids)
        self._dep_ranges.append(dep_ranges)
        self._specs.append(_spec or None)
        self._inputs.append(paths)
        self._outputs.append(tuple(outputs) if outputs else ())
        self._lines.append(line)
        self._by_key[key] = seq
        if handed:
            self._handoffs[seq] = handed
        task = _new(Task)
        task._job, task._own, task.seq = self, None, seq
        return task

    def _task_spec(self, task_id: str, line: int | None, **options: Any) -> dict[str, Any]:
        """Wire fields of a task from DSL keyword arguments, validated."""
        spec: dict[str, Any] = {}
        field = ""
        try:
            constraints: dict[str, Any] = {}
            field = "wall_clock"
            if options["wall_clock"] is not None:
                constraints["maxWallClockTime"] = to_wire_duration(options["wall_clock"])
            field = "retention"
            if options["retention"] is not None:
                constraints["retentionTime"] = to_wire_duration(options["retention"])
            field = "retries"
            retries = options["retries"]
            if retries is not None:
                if not isinstance(retries, int) or isinstance(retries, bool) or retries < -1:
                    raise ValueError(f"{retries!r} is not allowed; use -1 (forever), 0 or more")
                constraints["maxTaskRetryCount"] = retries
            if constraints:
                spec["constraints"] = constraints
            field = "display_name"
            if options["display_name"] is not None:
                spec["displayName"] = str(options["display_name"])
            field = "required_slots"
            slots = options["required_slots"]
            if slots is not None:
                if not isinstance(slots, int) or isinstance(slots, bool) or slots < 1:
                    raise ValueError(f"{slots!r} is not allowed; a task needs 1 or more slots")
                spec["requiredSlots"] = slots
            field = "env"
            if options["env"]:
                spec["environmentSettings"] = _env_list(options["env"])
            field = "resource_files"
            if options["resource_files"] is not None:
                spec["resourceFiles"] = _wire_list("ResourceFile", list(options["resource_files"]))
            field = "output_files"
            if options["output_files"] is not None:
                spec["outputFiles"] = _wire_list("OutputFile", list(options["output_files"]))
            for name, key, cls in (
                ("exit_conditions", "exitConditions", "ExitConditions"),
                ("user_identity", "userIdentity", "UserIdentity"),
                ("container", "containerSettings", "TaskContainerSettings"),
            ):
                field = name
                if options[name] is not None:
                    spec[key] = _wire_model(cls, options[name])
        except ValueError as exc:
            if _is_validation_error(exc):
                raise _field_error(
                    exc, field=field, job_id=self.id, task_id=task_id, line=line
                ) from None
            raise InvalidFieldError(
                str(exc), job_id=self.id, task_id=task_id, field=field, line=line
            ) from None
        return spec

    def map(
        self,
        id_template: str,
        command_template: str,
        *,
        after: After = None,
        inputs: Inputs = (),
        outputs: Iterable[str] = (),
        env: Mapping[str, Any] | None = None,
        zip: bool = False,
        **params: Any,
    ) -> TaskGroup:
        """One task per combination of `params`, ids and commands from format templates.

        `job.map("frame-{i:03d}", "render --frame {i}", i=range(1, 101))` makes
        frame-001..frame-100. Several parameters make their cartesian product (a sweep);
        with `zip=True` they are paired instead, the n-th value of each for the n-th task
        (`zip=True, scene=["a", "b"], seed=[1, 2]` makes 2 tasks, not 4).
        `inputs`, `outputs` and `env` values are templates too. Other keyword arguments
        of `task` (wall_clock, retries, ...) apply to every task. Tasks and groups in
        `inputs` hand their collected outputs to every task of the map (see `task`).
        """
        line = _caller_line()
        options = {k: params.pop(k) for k in list(params) if k in _TASK_OPTIONS - {"after"}}
        if not params:
            raise InvalidFieldError(
                "map() needs at least one parameter to sweep, e.g. i=range(10)",
                job_id=self.id,
                field=id_template,
                line=line,
            )
        names = list(params)
        placeholders = _template_fields(id_template)
        if not placeholders:
            raise InvalidFieldError(
                f"the id template '{id_template}' uses none of the parameters "
                f"({', '.join(names)}), so every task would get the same id; "
                f"write e.g. '{id_template}-{{{names[0]}}}'",
                job_id=self.id,
                field="id_template",
                line=line,
            )
        columns = [list(params[n]) for n in names]
        if zip:
            sizes = {n: len(c) for n, c in builtins.zip(names, columns, strict=True)}
            if len(set(sizes.values())) > 1:
                listed = ", ".join(f"{n} has {k:,}" for n, k in sizes.items())
                raise InvalidFieldError(
                    f"zip=True pairs the parameters, so they need one length: {listed}",
                    job_id=self.id,
                    field="zip",
                    line=line,
                )
            combinations: Iterable[tuple[Any, ...]] = builtins.zip(*columns, strict=True)
        else:
            combinations = itertools.product(*columns)
        shared = self._task_spec(
            id_template,
            line,
            **{k: options.get(k) for k in _TASK_OPTIONS - {"after", "inputs", "outputs", "env"}},
            env=None,
        )
        inputs, handed, handles = self._split_inputs(inputs, None, line)
        outputs = tuple(outputs)
        templates = [command_template, *inputs, *outputs, *(str(v) for v in (env or {}).values())]
        used = placeholders.union(*(_template_fields(t) for t in templates))
        for name in names if used <= set(names) else ():  # else: the fill error says more
            if name not in used:  # a typo of an option (`afer=`), or a sweep that sweeps nothing
                raise InvalidFieldError(
                    f"map() parameter '{name}' is used in no template (id, command, inputs, "
                    f"outputs, env), so it sweeps nothing"
                    + _suggest(name, sorted(_TASK_OPTIONS | {"zip"})),
                    job_id=self.id,
                    field=name,
                    line=line,
                )
        shared_deps: tuple[tuple[str, ...], DepIds, tuple[tuple[int, int], ...]] | None = None
        if handles:
            dep_ids, dep_ranges = self._resolve_after(after, id_template)
            dep_ids, dep_ranges = self._with_handed(dep_ids, dep_ranges, handles, id_template)
            shared_deps = (handed, dep_ids, dep_ranges)
        rows: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], tuple[str, ...]]] = []
        bad_ids: list[str] = []
        for values in combinations:
            bound = dict(builtins.zip(names, values, strict=True))
            try:
                task_id = id_template.format(**bound)
                command = command_template.format(**bound)
                spec = shared
                if env:
                    spec = {
                        **shared,
                        "environmentSettings": _env_list(
                            {k: str(v).format(**bound) for k, v in env.items()}
                        ),
                    }
                task_inputs = tuple(p.format(**bound) for p in inputs)
                task_outputs = tuple(p.format(**bound) for p in outputs)
            except (KeyError, IndexError, ValueError) as exc:
                raise InvalidFieldError(
                    f"template cannot be filled with {bound}: {exc!r}",
                    job_id=self.id,
                    field=id_template,
                    line=line,
                ) from None
            if not is_id(task_id):
                bad_ids.append(task_id)
            rows.append((task_id, command, spec, task_inputs, task_outputs))
        if bad_ids:
            # Every bad id at once (floats make one per value), not the first alone.
            shown = ", ".join(f"'{i}'" for i in bad_ids[:5])
            more = f" and {len(bad_ids) - 5:,} more" if len(bad_ids) > 5 else ""
            raise InvalidFieldError(
                f"{len(bad_ids):,} of {len(rows):,} ids made from '{id_template}' are not "
                f"valid task ids ({shown}{more}): an id holds at most 64 letters, digits, "
                "'-' and '_' (format the values, e.g. '{x:.0f}' or str(x).replace('.', '_'))",
                job_id=self.id,
                field="id_template",
                line=line,
            )
        made = [
            self.task(
                task_id,
                command,
                after=after,
                inputs=task_inputs,
                outputs=task_outputs,
                _line=line,
                _spec=spec,
                _handed=shared_deps,
            )
            for task_id, command, spec, task_inputs, task_outputs in rows
        ]
        group = TaskGroup(made, id_template)
        self._groups.append(group)
        return group

    # -- exporting -------------------------------------------------------------------

    def to_wire(self, *, with_tasks: bool = True) -> dict[str, Any]:
        """The job document Batch takes; with `tasks` (batchflow's format) by default."""
        wire = self.spec.to_wire()
        wire.pop("tasks", None)
        if self.spec.uses_task_dependencies is None and self.uses_task_dependencies:
            wire["usesTaskDependencies"] = True
        if with_tasks:
            wire["tasks"] = [
                _wire(task_id, command, dep_tuple(deps), ranges, spec)
                for task_id, command, deps, ranges, spec in zip(
                    self._ids,
                    self._commands,
                    self._dep_ids,
                    self._dep_ranges,
                    self._specs,
                    strict=True,
                )
            ]
        return wire
