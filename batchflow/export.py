"""Write a job as JSON, fast enough for a million tasks.

Three shapes:

- the job with a `tasks` array: batchflow's own document (what `submit` and `validate`
  read back); Batch's REST API has no request that takes a job and its tasks together;
- the job alone (`job_only`): the Job-Add body, `az batch job create --json-file`. It is
  written with `onAllTasksComplete: noaction`, because Batch completes a job that has no
  tasks at once when it says `terminatejob`; `deferred_on_all_tasks_complete` gives the
  flow's value, to set once the tasks are added;
- the task array (`tasks_only`): `az batch task create --json-file`.

The layout is one task per line inside the array: readable, diff-friendly, and written
with the C JSON encoder (an indented dump of a million tasks would take ten times longer).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from batchflow._gc import gc_paused
from batchflow.dsl import DepIds, Job, _wire, dep_tuple
from batchflow.exceptions import InvalidFieldError

__all__ = ["deferred_on_all_tasks_complete", "job_add_body", "write_job"]

_CHUNK = 10_000
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_c_encoder = getattr(json.encoder, "c_make_encoder", None)


def _make_dumps() -> Any:
    """One-line JSON for a value; the C encoder is built once, not once per task."""
    if _c_encoder is None:  # an interpreter without the C accelerator
        return _ENCODER.encode
    encode = _c_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _make_dumps()


def _write_tasks(job: Job, out: TextIO, indent: str) -> None:
    rows = list(
        zip(job._ids, job._commands, job._dep_ids, job._dep_ranges, job._specs, strict=True)
    )
    if not rows:
        out.write("[]")
        return
    out.write("[\n")
    sep = ",\n" + indent
    with gc_paused():
        for start in range(0, len(rows), _CHUNK):
            if start:
                out.write(",\n")
            out.write(indent + sep.join([_task_json(*row) for row in rows[start : start + _CHUNK]]))
    out.write("\n" + indent[:-2] + "]")


_quote = json.encoder.encode_basestring


def _task_json(
    task_id: str,
    command: str,
    dep_ids: DepIds,
    dep_ranges: tuple[tuple[int, int], ...],
    spec: dict[str, Any] | None,
) -> str:
    """A task's JSON; the usual shape (id, command, ids) is written without a dict."""
    if spec or dep_ranges:
        return str(_dumps(_wire(task_id, command, dep_tuple(dep_ids), dep_ranges, spec)))
    head = '{"id": ' + _quote(task_id) + ', "commandLine": ' + _quote(command)
    if not dep_ids:
        return head + "}"
    if type(dep_ids) is str:  # valid ids (letters, digits, '-', '_') need no escaping
        listed = '"' + dep_ids.replace(",", '", "') + '"'
    else:
        listed = ", ".join(map(_quote, dep_ids))
    return head + ', "dependsOn": {"taskIds": [' + listed + "]}}"


def deferred_on_all_tasks_complete(job: Job) -> str | None:
    """The flow's `onAllTasksComplete` when the Job-Add body cannot carry it (else None)."""
    value = job.spec.on_all_tasks_complete
    return None if value is None or value.lower() == "noaction" else str(value)


def job_add_body(job: Job) -> dict[str, Any]:
    """The body of Batch's Job-Add request for `job`: no tasks, `onAllTasksComplete` noaction.

    Raises `InvalidFieldError` when the job names no pool: Batch requires `poolInfo`.
    """
    if job.spec.pool_info is None:
        raise InvalidFieldError(
            "the job has no poolInfo, which Batch's Job-Add requires; name the pool "
            "(--pool-id POOL, pool= in Python, or poolInfo in the JSON)",
            job_id=job.id,
            field="poolInfo",
            file=job.source,
            line=job.line,
        )
    document: dict[str, Any] = job.to_wire(with_tasks=False)
    if deferred_on_all_tasks_complete(job) is not None:
        document["onAllTasksComplete"] = "noaction"
    return document


def write_job(job: Job, out: TextIO, *, tasks_only: bool = False, with_tasks: bool = True) -> None:
    """Write `job` to `out`: its task array (`tasks_only`), its Job-Add body
    (`with_tasks=False`, see `job_add_body`), or batchflow's job document with `tasks`."""
    if tasks_only:
        _write_tasks(job, out, "  ")
        out.write("\n")
        return
    document = job.to_wire(with_tasks=False) if with_tasks else job_add_body(job)
    lines = [f"  {json.dumps(key)}: {_dumps(value)}" for key, value in document.items()]
    out.write("{\n" + ",\n".join(lines))
    if with_tasks:
        out.write((",\n" if lines else "") + '  "tasks": ')
        _write_tasks(job, out, "    ")
    out.write("\n}\n")
