"""Batch's data-plane endpoints (batch-semantics.md 5.2), each a thin call to the service.

An operation reads what the request says (path, query, body), asks the service, and
says how to answer (status, entity headers, `url`s of the account's endpoint); no rule
of Batch is decided here. Paths arrive decoded (`files/wd%2Fa.txt` is `files/wd/a.txt`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.conditions import check
from batchflow.backends.local.filters import name_prefix
from batchflow.backends.local.taskspec import check_job, check_job_changes
from batchflow.emulator.app import Call, Reply, entity_headers
from batchflow.emulator.errors import EmulatorError
from batchflow.emulator.odata import parse_filter, parse_select
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from starlette.routing import Route

    from batchflow.backends.local.service import Page
    from batchflow.emulator.app import Emulator

__all__ = ["routes"]

_READ_CONDITIONS = ("if-match", "if-unmodified-since")
_CACHE_CONDITIONS = ("if-none-match", "if-modified-since")


# -- helpers -----------------------------------------------------------------------------


def _metadata(call: Call, kind: str) -> str:
    return f"{call.base_url}/$metadata#{kind}"


def _limit(call: Call) -> int:
    text = call.query.get("maxresults")
    if text is None:
        return 1000
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise EmulatorError(
            "OutOfRangeQueryParameterValue",
            "One of the query parameters specified in the request URI is outside the "
            "permissible range: maxresults is 1 to 1000.",
            values=(("QueryParameterName", "maxresults"), ("QueryParameterValue", text)),
        )
    return value


def _project(item: dict[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    if select is None:
        return item
    return {k: v for k, v in item.items() if k in select}


def _listing(call: Call, page: Page, kind: str, url: str | None = None) -> Reply:
    select = parse_select(call.query.get("$select"))
    values = []
    for item in page:
        if url is not None:
            item["url"] = f"{url}/{item['id']}"
        values.append(_project(item, select))
    body: dict[str, Any] = {"odata.metadata": _metadata(call, kind), "value": values}
    link = call.page_link(page.continuation)
    if link is not None:
        body["odata.nextLink"] = link
    return Reply(200, body)


def _read(call: Call, entity: dict[str, Any], kind: str, url: str) -> Reply:
    """A GET of one entity: its conditions (412 / 304), `$select`, headers."""
    check(entity, call.conditions(keys=_READ_CONDITIONS))
    try:
        check(entity, call.conditions(keys=_CACHE_CONDITIONS))
    except BackendError:
        raise EmulatorError("ConditionNotMet", "Not modified.", status=304) from None
    entity["url"] = url
    body = {"odata.metadata": _metadata(call, f"{kind}/@Element")}
    body.update(_project(entity, parse_select(call.query.get("$select"))))
    return Reply(200, body, entity_headers(entity))


def _created(call: Call, entity: dict[str, Any], url: str) -> Reply:
    return Reply(201, None, {**entity_headers(entity), "DataServiceId": url, "Location": url})


def _written(entity: dict[str, Any], url: str, status: int = 200) -> Reply:
    return Reply(status, None, {**entity_headers(entity), "DataServiceId": url})


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EmulatorError("InvalidRequestBody", f"The body of {what} must be a JSON object.")
    return value


def _flag(call: Call, name: str) -> bool:
    return call.query.get(name, "false").lower() == "true"


# -- jobs --------------------------------------------------------------------------------


def _job_url(call: Call, job_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}"


def create_job(call: Call) -> Reply:
    spec = check_job(call.json())
    job = call.service.create_job(spec)
    return _created(call, job, _job_url(call, job["id"]))


def list_jobs(call: Call) -> Reply:
    page = call.service.list_jobs(
        where=parse_filter(call.query.get("$filter")),
        limit=_limit(call),
        continuation=call.query.get("$skiptoken"),
    )
    return _listing(call, page, "jobs", f"{call.base_url}/jobs")


def get_job(call: Call) -> Reply:
    job = call.service.get_job(call.params["job"])
    return _read(call, job, "jobs", _job_url(call, job["id"]))


def _job_write(call: Call) -> str:
    """Check a write's conditions on the job; its id."""
    job = call.service.get_job(call.params["job"])
    check(job, call.conditions())
    return str(job["id"])


def update_job(call: Call) -> Reply:
    job_id = _job_write(call)
    changes = check_job_changes(job_id, _object(call.json(), "a job update"))
    call.service.update_job(job_id, changes, replace=call.method == "PUT")
    return _written(call.service.get_job(job_id), _job_url(call, job_id))


def delete_job(call: Call) -> Reply:
    call.service.delete_job(_job_write(call))
    return Reply(202)


def terminate_job(call: Call) -> Reply:
    job_id = _job_write(call)
    body = _object(call.json(), "a job termination")
    call.service.terminate_job(job_id, body.get("terminateReason"))
    return Reply(202, None, {"DataServiceId": _job_url(call, job_id)})


def disable_job(call: Call) -> Reply:
    job_id = _job_write(call)
    body = _object(call.json(), "a job disable")
    mode = body.get("disableTasks")
    if not isinstance(mode, str):
        raise BackendError(
            "disableTasks is required: requeue, terminate or wait",
            code="MissingRequiredProperty",
            job_id=job_id,
            values=(("PropertyName", "disableTasks"),),
        )
    call.service.disable_job(job_id, mode)
    return Reply(202, None, {"DataServiceId": _job_url(call, job_id)})


def enable_job(call: Call) -> Reply:
    job_id = _job_write(call)
    call.service.enable_job(job_id)
    return Reply(202, None, {"DataServiceId": _job_url(call, job_id)})


def task_counts(call: Call) -> Reply:
    counts = call.service.task_counts(call.params["job"])
    body = {"odata.metadata": _metadata(call, "taskcountsresult/@Element"), **counts}
    return Reply(200, body)


def preparation_status(call: Call) -> Reply:
    entries = call.service.preparation_status(call.params["job"])
    return Reply(
        200,
        {
            "odata.metadata": _metadata(call, "jobpreparationandreleasetaskstatuslist"),
            "value": entries,
        },
    )


# -- tasks -------------------------------------------------------------------------------


def _task_url(call: Call, job_id: str, task_id: str) -> str:
    return f"{call.base_url}/jobs/{job_id}/tasks/{task_id}"


def create_task(call: Call) -> Reply:
    job_id = call.params["job"]
    task = call.service.add_task(job_id, _object(call.json(), "a task"))
    return _created(call, task, _task_url(call, job_id, task["id"]))


def add_collection(call: Call) -> Reply:
    job_id = call.params["job"]
    body = _object(call.json(), "a task collection")
    tasks = body.get("value")
    if not isinstance(tasks, list):
        raise EmulatorError("InvalidRequestBody", 'A task collection is {"value": [task, ...]}.')
    fault = call.fault
    if fault is not None and fault.partial is not None:
        # An injected fault after part of the work: some tasks were added, the client
        # will not hear which.
        tasks = tasks[: int(len(tasks) * fault.partial)]
        if not tasks:
            return Reply(200)
    results = call.service.add_tasks(job_id, tasks)
    for result in results:
        if result["status"] == "success":
            result["location"] = _task_url(call, job_id, result["taskId"])
    return Reply(200, {"odata.metadata": _metadata(call, "taskaddresult"), "value": results})


def list_tasks(call: Call) -> Reply:
    job_id = call.params["job"]
    page = call.service.list_tasks(
        job_id,
        where=parse_filter(call.query.get("$filter")),
        limit=_limit(call),
        continuation=call.query.get("$skiptoken"),
    )
    return _listing(call, page, "tasks", f"{call.base_url}/jobs/{job_id}/tasks")


def get_task(call: Call) -> Reply:
    job_id, task_id = call.params["job"], call.params["task"]
    task = call.service.get_task(job_id, task_id)
    return _read(call, task, "tasks", _task_url(call, job_id, task["id"]))


def _task_write(call: Call) -> tuple[str, str]:
    job_id = call.params["job"]
    task = call.service.get_task(job_id, call.params["task"])
    check(task, call.conditions())
    return job_id, str(task["id"])


def update_task(call: Call) -> Reply:
    job_id, task_id = _task_write(call)
    body = _object(call.json(), "a task update")
    call.service.update_task(job_id, task_id, body.get("constraints") or {})
    task = call.service.get_task(job_id, task_id)
    return _written(task, _task_url(call, job_id, task_id))


def delete_task(call: Call) -> Reply:
    job_id, task_id = _task_write(call)
    call.service.delete_task(job_id, task_id)
    return Reply(200)


def terminate_task(call: Call) -> Reply:
    job_id, task_id = _task_write(call)
    call.service.terminate_task(job_id, task_id)
    return _written(call.service.get_task(job_id, task_id), _task_url(call, job_id, task_id), 204)


def reactivate_task(call: Call) -> Reply:
    job_id, task_id = _task_write(call)
    call.service.reactivate_task(job_id, task_id)
    return _written(call.service.get_task(job_id, task_id), _task_url(call, job_id, task_id), 204)


def subtasks(call: Call) -> Reply:
    found = call.service.list_subtasks(call.params["job"], call.params["task"])
    return Reply(200, {"odata.metadata": _metadata(call, "subtaskinfo"), "value": found})


# -- files (of tasks and of nodes) ---------------------------------------------------------


def _tree(call: Call) -> tuple[Any, str, str, str]:
    """(file tree, owner, item, url of its files) of a task's or a node's files."""
    if "job" in call.params:
        job, task = call.params["job"], call.params["task"]
        return call.service.files, job, task, f"{call.base_url}/jobs/{job}/tasks/{task}/files"
    pool, node = call.params["pool"], call.params["node"]
    return (
        call.service.node_files,
        pool,
        node,
        f"{call.base_url}/pools/{pool}/nodes/{node}/files",
    )


def list_files(call: Call) -> Reply:
    tree, owner, item, url = _tree(call)
    prefix = name_prefix(parse_filter(call.query.get("$filter")))
    entries = tree.list(owner, item, recursive=_flag(call, "recursive"), prefix=prefix)
    for entry in entries:
        entry["url"] = f"{url}/{entry['name']}"
    limit = _limit(call)
    body = {"odata.metadata": _metadata(call, "files"), "value": entries[:limit]}
    return Reply(200, body)


def _range(call: Call, size: int) -> tuple[int, int | None]:
    text = call.headers.get("ocp-range")
    if not text:
        return 0, None
    unit, _, span = text.partition("=")
    start_text, _, end_text = span.partition("-")
    try:
        if unit.strip().lower() != "bytes" or not start_text.strip():
            raise ValueError
        start = int(start_text)
        end = int(end_text) if end_text.strip() else size - 1
        if start < 0 or end < start:
            raise ValueError
    except ValueError:
        raise EmulatorError(
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format: "
            "ocp-range is bytes=START-END.",
            values=(("HeaderName", "ocp-range"), ("HeaderValue", text)),
        ) from None
    return start, end - start + 1


def _file_headers(entry: dict[str, Any], url: str) -> dict[str, str]:
    properties = entry["properties"]
    modified = datetime.fromisoformat(properties["lastModified"][:19] + "+00:00")
    return {
        "Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True),
        "ocp-batch-file-isdirectory": "false",
        "ocp-batch-file-url": url,
        "ocp-batch-file-mode": properties.get("fileMode", "0o100644"),
    }


def get_file(call: Call) -> Reply:
    tree, owner, item, url = _tree(call)
    name = call.params["path"]
    entry = tree.properties(owner, item, name)
    size = int(entry["properties"]["contentLength"])
    offset, length = _range(call, size)
    data = tree.read(owner, item, name, offset=offset, length=length)
    headers = _file_headers(entry, f"{url}/{name}")
    return Reply(200, raw=data, headers=headers, content_type="application/octet-stream")


def file_properties(call: Call) -> Reply:
    tree, owner, item, url = _tree(call)
    name = call.params["path"]
    entry = tree.properties(owner, item, name)
    headers = _file_headers(entry, f"{url}/{name}")
    headers["Content-Length"] = entry["properties"]["contentLength"]
    headers["Content-Type"] = "application/octet-stream"
    return Reply(200, raw=b"", headers=headers, content_type="application/octet-stream")


def delete_file(call: Call) -> Reply:
    tree, owner, item, _url = _tree(call)
    tree.delete(owner, item, call.params["path"], recursive=_flag(call, "recursive"))
    return Reply(200)


# -- pools and nodes -----------------------------------------------------------------------


def _pool_url(call: Call, pool_id: str) -> str:
    return f"{call.base_url}/pools/{pool_id}"


def create_pool(call: Call) -> Reply:
    pool = call.service.pools.create(_object(call.json(), "a pool"))
    return _created(call, pool, _pool_url(call, pool["id"]))


def list_pools(call: Call) -> Reply:
    page = call.service.pools.list_pools(
        where=parse_filter(call.query.get("$filter")),
        limit=_limit(call),
        continuation=call.query.get("$skiptoken"),
    )
    return _listing(call, page, "pools", f"{call.base_url}/pools")


def get_pool(call: Call) -> Reply:
    pool = call.service.pools.get(call.params["pool"])
    return _read(call, pool, "pools", _pool_url(call, pool["id"]))


def pool_exists(call: Call) -> Reply:
    pool_id = call.params["pool"]
    if not call.service.pools.exists(pool_id):
        raise BackendError(f"pool '{pool_id}' does not exist", code="PoolNotFound")
    return Reply(200, raw=b"")


def _pool_write(call: Call) -> str:
    pool = call.service.pools.get(call.params["pool"])
    check(pool, call.conditions())
    return str(pool["id"])


def delete_pool(call: Call) -> Reply:
    call.service.pools.delete(_pool_write(call))
    return Reply(202)


def update_pool(call: Call) -> Reply:
    pool_id = _pool_write(call)
    call.service.pools.update(pool_id, _object(call.json(), "a pool update"))
    status = 204 if call.params["__path__"].endswith("/updateproperties") else 200
    return _written(call.service.pools.get(pool_id), _pool_url(call, pool_id), status)


def resize_pool(call: Call) -> Reply:
    pool_id = _pool_write(call)
    body = _object(call.json(), "a pool resize")
    call.service.pools.resize(
        pool_id,
        target_dedicated_nodes=body.get("targetDedicatedNodes"),
        target_low_priority_nodes=body.get("targetLowPriorityNodes"),
    )
    return Reply(202, None, {"DataServiceId": _pool_url(call, pool_id)})


def stop_resize(call: Call) -> Reply:
    # Local resizes complete at once: there is nothing to stop.
    return Reply(202, None, {"DataServiceId": _pool_url(call, _pool_write(call))})


def autoscale(call: Call) -> Reply:
    """enable/disable/evaluate autoscale: kept on the pool and answered; a local pool's
    size changes only by resize."""
    pool_id = _pool_write(call)
    action = call.params["__path__"].rsplit("/", 1)[-1]
    body = _object(call.json(), "an autoscale request")
    if action == "enableautoscale":
        call.service.pools.update(pool_id, {**body, "enableAutoScale": True})
    elif action == "disableautoscale":
        call.service.pools.update(pool_id, {"enableAutoScale": False})
    else:
        now = datetime.now(UTC)
        run = {
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
            "results": str(body.get("autoScaleFormula", "")),
        }
        return Reply(200, {"odata.metadata": _metadata(call, "autoscalerun/@Element"), **run})
    return _written(call.service.pools.get(pool_id), _pool_url(call, pool_id))


def list_nodes(call: Call) -> Reply:
    pool_id = call.params["pool"]
    nodes = call.service.pools.nodes(pool_id)
    for node in nodes:
        node["url"] = f"{_pool_url(call, pool_id)}/nodes/{node['id']}"
    select = parse_select(call.query.get("$select"))
    values = [_project(n, select) for n in nodes[: _limit(call)]]
    return Reply(200, {"odata.metadata": _metadata(call, "nodes"), "value": values})


def get_node(call: Call) -> Reply:
    pool_id = call.params["pool"]
    node = call.service.pools.node(pool_id, call.params["node"])
    node["url"] = f"{_pool_url(call, pool_id)}/nodes/{node['id']}"
    body = {"odata.metadata": _metadata(call, "nodes/@Element"), **node}
    return Reply(200, _project(body, parse_select(call.query.get("$select"))))


# -- the table -----------------------------------------------------------------------------


def routes(emulator: Emulator) -> list[Route]:
    """Every endpoint, in matching order (HEAD before the GET of the same path)."""
    r = emulator.route
    job = "/jobs/{job}"
    task = job + "/tasks/{task}"
    pool = "/pools/{pool}"
    node = pool + "/nodes/{node}"
    table = [
        r("/jobs", ["POST"], create_job),
        r("/jobs", ["GET"], list_jobs),
        r(job, ["GET"], get_job),
        r(job, ["PATCH", "PUT"], update_job),
        r(job, ["DELETE"], delete_job),
        r(job + "/terminate", ["POST"], terminate_job),
        r(job + "/disable", ["POST"], disable_job),
        r(job + "/enable", ["POST"], enable_job),
        r(job + "/taskcounts", ["GET"], task_counts),
        r(job + "/jobpreparationandreleasetaskstatus", ["GET"], preparation_status),
        r(job + "/tasks", ["POST"], create_task),
        r(job + "/tasks", ["GET"], list_tasks),
        r(job + "/addtaskcollection", ["POST"], add_collection, collection=True),
        r(task, ["GET"], get_task),
        r(task, ["PUT"], update_task),
        r(task, ["DELETE"], delete_task),
        r(task + "/terminate", ["POST"], terminate_task),
        r(task + "/reactivate", ["POST"], reactivate_task),
        r(task + "/subtasksinfo", ["GET"], subtasks),
        r("/pools", ["POST"], create_pool),
        r("/pools", ["GET"], list_pools),
        r(pool, ["HEAD"], pool_exists),
        r(pool, ["GET"], get_pool),
        r(pool, ["DELETE"], delete_pool),
        r(pool, ["PATCH"], update_pool),
        r(pool + "/updateproperties", ["POST"], update_pool),
        r(pool + "/resize", ["POST"], resize_pool),
        r(pool + "/stopresize", ["POST"], stop_resize),
        r(pool + "/enableautoscale", ["POST"], autoscale),
        r(pool + "/disableautoscale", ["POST"], autoscale),
        r(pool + "/evaluateautoscale", ["POST"], autoscale),
        r(pool + "/nodes", ["GET"], list_nodes),
        r(node, ["GET"], get_node),
    ]
    for owner in (task, node):
        table += [
            r(owner + "/files", ["GET"], list_files),
            r(owner + "/files/{path:path}", ["HEAD"], file_properties),
            r(owner + "/files/{path:path}", ["GET"], get_file),
            r(owner + "/files/{path:path}", ["DELETE"], delete_file),
        ]
    return table
