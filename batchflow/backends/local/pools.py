"""Pools of the local Batch service: each a set of local nodes, as Batch's pool API shows them.

A pool created here (by the emulator, or users' code) is `targetDedicatedNodes +
targetLowPriorityNodes` nodes of `taskSlotsPerNode` slots each, named `tvm-<pool>-<n>`,
each with its own node directory tree. Resizing and deleting are asynchronous as on Batch
(`resizing`, `deleting`), carried out by the engine: nodes that go away requeue the tasks
running on them (Batch's default `nodeDeallocationOption`). A job that names a pool that
does not exist keeps its tasks `active` until the pool appears (when it was created with
`pool_required`, as the emulator creates jobs; the CLI's jobs run on the state directory's
own nodes whatever their poolId says).

What a pool is made of beyond its size (VM size, image, start task, autoscale formula) is
kept and returned as given; locally it changes nothing.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from batchflow.backends.local.catalog import canonical
from batchflow.backends.local.paths import pool_node_names
from batchflow.backends.local.wire import etag, timestamp
from batchflow.exceptions import BackendError

if TYPE_CHECKING:
    from batchflow.backends.local.service import BatchService, Page

__all__ = ["MAX_NODES", "Pools"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COLUMNS = (
    "rowid, id, spec, state, state_time, creation_time, modified, allocation_state, "
    "allocation_time, target, slots"
)
#: Most nodes a local pool may have (each is a directory tree and a share of this machine).
MAX_NODES = 64


def _count(value: Any, field: str, pool_id: str, *, low: int, high: int) -> int:
    """An integer field as clients send it (`az` sends "2": a string)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BackendError(
            f"pool '{pool_id}' {field}: '{value}' is not an integer",
            code="InvalidPropertyValue",
            values=(("PropertyName", field),),
        ) from None
    if not low <= number <= high:
        raise BackendError(
            f"pool '{pool_id}' {field}: {number} is not within {low}..{high}",
            code="InvalidPropertyValue",
            values=(("PropertyName", field),),
        )
    return number


class Pools:
    """The pool and compute node operations of one service."""

    def __init__(self, service: BatchService) -> None:
        self.service = service

    def _row(self, db: Any, pool_id: str) -> Any:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM pools WHERE key = ?", (pool_id.lower(),)
        ).fetchone()
        if row is None:
            raise BackendError(f"pool '{pool_id}' does not exist", code="PoolNotFound")
        return row

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a pool (`POST /pools`); `PoolExists` if one has its id."""
        pool_id = spec.get("id")
        if not isinstance(pool_id, str) or not _ID.match(pool_id):
            raise BackendError(
                f"pool id '{pool_id}' must be 1 to 64 letters, digits, '-' or '_'",
                code="InvalidPropertyValue",
                values=(("PropertyName", "id"),),
            )
        if not spec.get("vmSize"):
            raise BackendError(
                f"pool '{pool_id}' vmSize: required",
                code="MissingRequiredProperty",
                values=(("PropertyName", "vmSize"),),
            )
        slots = _count(
            spec.get("taskSlotsPerNode", 1), "taskSlotsPerNode", pool_id, low=1, high=256
        )
        dedicated = _count(
            spec.get("targetDedicatedNodes", 0),
            "targetDedicatedNodes",
            pool_id,
            low=0,
            high=MAX_NODES,
        )
        low_priority = _count(
            spec.get("targetLowPriorityNodes", 0),
            "targetLowPriorityNodes",
            pool_id,
            low=0,
            high=MAX_NODES,
        )
        stored = dict(spec)
        stored.update(
            taskSlotsPerNode=slots,
            targetDedicatedNodes=dedicated,
            targetLowPriorityNodes=low_priority,
        )
        now = time.time()
        service = self.service
        with service.store.write() as db:
            if db.execute("SELECT 1 FROM pools WHERE key = ?", (pool_id.lower(),)).fetchone():
                raise BackendError(f"pool '{pool_id}' already exists", code="PoolExists")
            db.execute(
                "INSERT INTO pools(id, key, spec, state, state_time, creation_time, modified, "
                "allocation_state, allocation_time, target, slots) "
                "VALUES(?, ?, ?, 'active', ?, ?, ?, 'steady', ?, ?, ?)",
                (
                    pool_id,
                    pool_id.lower(),
                    service.store.seal(canonical(stored)),
                    now,
                    now,
                    now,
                    now,
                    min(dedicated + low_priority, MAX_NODES),
                    slots,
                ),
            )
            db.execute("UPDATE jobs SET settled = 0 WHERE pool_required = 1")
            service._request(db, 0, "pools")
        service.wake()
        return self.get(pool_id)

    def _wire(self, row: Any) -> dict[str, Any]:
        _rowid, pool_id, spec_text, state, state_time, created, modified = row[:7]
        allocation_state, allocation_time, target, slots = row[7:]
        spec = json.loads(spec_text)
        spec.pop("id", None)
        dedicated = spec.get("targetDedicatedNodes", 0)
        wire: dict[str, Any] = {
            "id": pool_id,
            "eTag": etag(modified),
            "lastModified": timestamp(modified),
            "creationTime": timestamp(created),
            "state": state,
            "stateTransitionTime": timestamp(state_time),
            "allocationState": allocation_state,
            "allocationStateTransitionTime": timestamp(allocation_time),
            "resizeTimeout": spec.pop("resizeTimeout", "PT15M"),
            "enableAutoScale": spec.pop("enableAutoScale", False),
            "enableInterNodeCommunication": spec.pop("enableInterNodeCommunication", False),
            "taskSchedulingPolicy": spec.pop("taskSchedulingPolicy", {"nodeFillType": "spread"}),
        }
        wire.update(spec)
        wire["taskSlotsPerNode"] = slots
        steady = allocation_state == "steady"
        current = target if steady and state == "active" else 0
        wire["currentDedicatedNodes"] = min(current, dedicated)
        wire["currentLowPriorityNodes"] = max(0, current - dedicated)
        return wire

    def get(self, pool_id: str) -> dict[str, Any]:
        """A pool in the wire shape (`GET /pools/{id}`); `PoolNotFound`."""
        return self._wire(self._row(self.service.store.conn, pool_id))

    def exists(self, pool_id: str) -> bool:
        """Whether the pool exists (`HEAD /pools/{id}`)."""
        row = self.service.store.one("SELECT 1 FROM pools WHERE key = ?", (pool_id.lower(),))
        return row is not None

    def list_pools(self, *, limit: int = 1000, continuation: str | None = None) -> Page:
        """Pools in creation order, paged (`GET /pools`)."""
        from batchflow.backends.local.service import Page, _token, _untoken

        limit = max(1, min(limit, 1000))
        rows = self.service.store.query(
            f"SELECT {_COLUMNS} FROM pools WHERE rowid > ? ORDER BY rowid LIMIT {limit + 1}",
            (_untoken(continuation),),
        )
        page = Page(self._wire(r) for r in rows[:limit])
        if len(rows) > limit:
            page.continuation = _token(rows[limit - 1][0])
        return page

    def resize(
        self,
        pool_id: str,
        target_dedicated_nodes: Any = None,
        target_low_priority_nodes: Any = None,
    ) -> None:
        """Change a pool's size (`POST /pools/{id}/resize`): `resizing` until the engine has
        added or removed the nodes (the tasks of removed nodes are requeued)."""
        service = self.service
        with service.store.write() as db:
            row = self._row(db, pool_id)
            if row[3] != "active":
                raise BackendError(f"pool '{row[1]}' is {row[3]}", code="PoolBeingDeleted")
            spec = json.loads(row[2])
            if target_dedicated_nodes is not None:
                spec["targetDedicatedNodes"] = _count(
                    target_dedicated_nodes, "targetDedicatedNodes", row[1], low=0, high=MAX_NODES
                )
            if target_low_priority_nodes is not None:
                spec["targetLowPriorityNodes"] = _count(
                    target_low_priority_nodes,
                    "targetLowPriorityNodes",
                    row[1],
                    low=0,
                    high=MAX_NODES,
                )
            target = spec.get("targetDedicatedNodes", 0) + spec.get("targetLowPriorityNodes", 0)
            now = time.time()
            db.execute(
                "UPDATE pools SET spec = ?, target = ?, modified = ?, allocation_state = "
                "'resizing', allocation_time = ? WHERE rowid = ?",
                (service.store.seal(canonical(spec)), min(target, MAX_NODES), now, now, row[0]),
            )
            db.execute("UPDATE jobs SET settled = 0 WHERE pool_required = 1")
            service._request(db, 0, "pools")
        service.wake()

    def update(self, pool_id: str, patch: dict[str, Any]) -> None:
        """Change what a pool is made of (autoscale settings, start task, metadata): kept
        and returned; locally they change nothing. Size changes go through `resize`."""
        service = self.service
        with service.store.write() as db:
            row = self._row(db, pool_id)
            spec = json.loads(row[2])
            spec.update({k: v for k, v in patch.items() if k not in ("id", "taskSlotsPerNode")})
            db.execute(
                "UPDATE pools SET spec = ?, modified = ? WHERE rowid = ?",
                (service.store.seal(canonical(spec)), time.time(), row[0]),
            )

    def delete(self, pool_id: str) -> None:
        """Delete a pool (`DELETE /pools/{id}`): `deleting` at once; the engine removes its
        nodes (their tasks are requeued) and then the pool."""
        service = self.service
        with service.store.write() as db:
            row = self._row(db, pool_id)
            if row[3] != "deleting":
                now = time.time()
                db.execute(
                    "UPDATE pools SET state = 'deleting', state_time = ?, modified = ? "
                    "WHERE rowid = ?",
                    (now, now, row[0]),
                )
                service._request(db, 0, "pools")
        service.wake()

    # -- compute nodes ---------------------------------------------------------------

    def nodes(self, pool_id: str) -> list[dict[str, Any]]:
        """The pool's compute nodes (`GET /pools/{id}/nodes`)."""
        db = self.service.store.conn
        row = self._row(db, pool_id)
        if row[3] != "active" or row[7] != "steady":
            return []
        names = pool_node_names(row[1], row[9])
        busy: dict[str, tuple[int, int]] = {}
        marks = ",".join("?" * len(names))
        if names:
            for node, count, slots in db.execute(
                f"SELECT node, count(*), sum(coalesce(slots, 1)) FROM tasks WHERE state IN (1, 2) "
                f"AND node IN ({marks}) GROUP BY node",
                tuple(names),
            ):
                busy[node] = (count, slots)
        spec = json.loads(row[2])
        dedicated = spec.get("targetDedicatedNodes", 0)
        return [
            {
                "id": name,
                "state": "running" if name in busy else "idle",
                "schedulingState": "enabled",
                "stateTransitionTime": timestamp(row[8]),
                "allocationTime": timestamp(row[8]),
                "ipAddress": "127.0.0.1",
                "vmSize": spec.get("vmSize", ""),
                "isDedicated": n < dedicated,
                "runningTasksCount": busy.get(name, (0, 0))[0],
                "runningTaskSlotsCount": busy.get(name, (0, 0))[1],
                "totalTasksRun": 0,
                "nodeAgentInfo": {
                    "version": "batchflow-local",
                    "lastUpdateTime": timestamp(row[5]),
                },
            }
            for n, name in enumerate(names)
        ]

    def node(self, pool_id: str, node_id: str) -> dict[str, Any]:
        """One compute node (`GET /pools/{id}/nodes/{node}`); `NodeNotFound`."""
        for node in self.nodes(pool_id):
            if node["id"].lower() == node_id.lower():
                return node
        raise BackendError(f"pool '{pool_id}' has no node '{node_id}'", code="NodeNotFound")
