"""The dependency graph of a job: resolving ids and ranges, cycles, order, drawing.

Dependencies are resolved the way Batch resolves them: ids case-insensitively, and
`taskIdRanges` over the tasks whose id is an integer (leading zeros do not count, so
`7`, `07` and `007` are all task 7). Each task's dependencies become the positions of the
tasks it waits for, so the rest of the module works on integers.

The cycle check first tries the cheapest proof there is: if every task depends only on
tasks defined before it, definition order is a topological order and there is no cycle.
Only when that fails does it run Kahn's algorithm and name a cycle.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

from batchflow.dsl import Job
from batchflow.names import task_number

__all__ = ["Graph", "numeric_index", "render"]


@dataclass
class Graph:
    """A job's tasks with dependencies resolved to task positions."""

    job: Job
    #: deps[i] = positions of the tasks task i waits for.
    deps: list[tuple[int, ...]]
    #: (task position, field, missing id) for every dependency that names no task.
    unknown: list[tuple[int, str, str]] = field(default_factory=list)
    #: (task position, range index, start, end, missing count) for incomplete ranges.
    incomplete_ranges: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    #: True when every task depends only on tasks defined before it (then there is no cycle).
    ordered: bool = False

    @classmethod
    def of(cls, job: Job) -> Graph:
        """Resolve every dependency of `job`."""
        bulk = _resolve_joined(job)
        if bulk is not None:
            return cls(job, bulk, [], [], True)
        by_key = job._by_key  # lowercased id -> row
        numeric: list[tuple[int, int]] | None = None
        keys: list[int] = []
        deps: list[tuple[int, ...]] = []
        unknown: list[tuple[int, str, str]] = []
        incomplete: list[tuple[int, int, int, int, int]] = []
        empty: tuple[int, ...] = ()
        get = by_key.get
        ordered = True  # does every task depend only on tasks defined before it?
        lookup = by_key.__getitem__
        for pos, (ids, ranges) in enumerate(zip(job._dep_ids, job._dep_ranges, strict=True)):
            if not ids and not ranges:
                deps.append(empty)
                continue
            if type(ids) is str:
                ids = ids.split(",")
                if not ranges:
                    try:  # joined ids name tasks defined earlier (see dsl.DepIds)
                        deps.append(tuple(map(lookup, ids)))
                        continue
                    except KeyError:
                        pass
            elif not ranges:
                try:  # the common case: lowercase ids, spelled as defined
                    found_now = tuple(map(lookup, ids))
                except KeyError:
                    pass
                else:
                    if ordered and max(found_now) >= pos:
                        ordered = False
                    deps.append(found_now)
                    continue
            found: list[int] = []
            for n, dep in enumerate(ids):
                hit = get(dep)
                if hit is None:
                    hit = get(dep.lower())
                if hit is None:
                    unknown.append((pos, f"dependsOn.taskIds[{n}]", dep))
                else:
                    found.append(hit)
            for n, (start, end) in enumerate(ranges):
                if numeric is None:
                    numeric = numeric_index(job._ids)
                    keys = [k for k, _ in numeric]
                lo, hi = bisect_left(keys, start), bisect_right(keys, end)
                members = numeric[lo:hi]
                present = len({k for k, _ in members})
                if present != end - start + 1:
                    incomplete.append((pos, n, start, end, end - start + 1 - present))
                found.extend(p for _, p in members)
            if ordered and found and max(found) >= pos:
                ordered = False
            deps.append(tuple(found))
        return cls(job, deps, unknown, incomplete, ordered)

    def find_cycle(self) -> list[int] | None:
        """Positions of the tasks on one cycle (first repeated at the end), or None.

        A task that depends on itself is a cycle of one: `[i, i]`.
        """
        deps = self.deps
        if self.ordered or all(d < i for i, ds in enumerate(deps) for d in ds):
            return None
        for i, ds in enumerate(deps):
            if i in ds:
                return [i, i]
        return self._longer_cycle()

    def _longer_cycle(self) -> list[int] | None:
        deps = self.deps
        order = self._kahn()
        if len(order) == len(deps):
            return None
        done = set(order)
        # Every task left over waits, directly or not, on a cycle: walk back until a repeat.
        start = next(i for i in range(len(deps)) if i not in done)
        seen: dict[int, int] = {}
        path: list[int] = []
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(d for d in deps[node] if d not in done and d != node)
        cycle = path[seen[node] :]
        cycle.reverse()
        return [*cycle, cycle[0]]

    def _kahn(self) -> list[int]:
        # Self-loops are reported on their own; here they must not hide a longer cycle.
        deps = [tuple(d for d in ds if d != i) for i, ds in enumerate(self.deps)]
        waiting = [len(ds) for ds in deps]
        children: list[list[int]] = [[] for _ in deps]
        for i, ds in enumerate(deps):
            for d in ds:
                children[d].append(i)
        ready = [i for i, w in enumerate(waiting) if w == 0]
        order: list[int] = []
        while ready:
            node = ready.pop()
            order.append(node)
            for child in children[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        return order

    def topological_order(self) -> list[int]:
        """Positions in an order where every task comes after the tasks it waits for."""
        if self.ordered or all(d < i for i, ds in enumerate(self.deps) for d in ds):
            return list(range(len(self.deps)))
        order = self._kahn()
        if len(order) != len(self.deps):
            raise ValueError("the graph has a cycle")
        return order


def _resolve_joined(job: Job) -> list[tuple[int, ...]] | None:
    """Every task's dependencies in one sweep, when all were made by `after=` in Python.

    Those are ids joined by commas that name tasks defined earlier (see dsl.DepIds), so
    they resolve with C-level joins, splits and dictionary lookups instead of a Python loop
    per task; the order is topological by construction. None when the job has anything
    else (JSON dependencies, ranges, ids that differ in case), for the general path.
    """
    columns = job._dep_ids
    if any(job._dep_ranges) or not all(type(ids) is str for ids in columns):
        return None
    joined = ",".join(filter(None, columns))
    try:
        rows = list(map(job._by_key.__getitem__, joined.split(","))) if joined else []
    except KeyError:
        return None
    empty: tuple[int, ...] = ()
    flow = iter(rows)
    return [tuple(islice(flow, ids.count(",") + 1)) if ids else empty for ids in columns]


def numeric_index(ids: Sequence[str]) -> list[tuple[int, int]]:
    """(integer value, position) of every task whose id is an integer, sorted."""
    out = []
    for pos, text in enumerate(ids):
        number = task_number(text)
        if number is not None:
            out.append((number, pos))
    out.sort()
    return out


# -- drawing -------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


@dataclass
class _Node:
    name: str
    members: list[int]


def _collapse(graph: Graph, threshold: int) -> tuple[list[_Node], list[int]]:
    """Nodes to draw: map groups and same-shaped siblings with >= threshold members."""
    job = graph.job
    owner = [-1] * len(job.tasks)
    nodes: list[_Node] = []
    for group in job.groups:
        if len(group) >= threshold:
            node_index = len(nodes)
            nodes.append(
                _Node(_span(group[0].id, group[-1].id, len(group)), [t.seq for t in group])
            )
            for task in group:
                owner[task.seq] = node_index
    # Tasks with the same id shape and the same dependencies (e.g. a JSON file of frames).
    buckets: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
    for pos, task in enumerate(job.tasks):
        if owner[pos] == -1:
            buckets[(_DIGITS.sub("#", task.id), graph.deps[pos])].append(pos)
    for members in buckets.values():
        if len(members) >= threshold:
            first, last = job.tasks[members[0]].id, job.tasks[members[-1]].id
            node_index = len(nodes)
            nodes.append(_Node(_span(first, last, len(members)), members))
            for pos in members:
                owner[pos] = node_index
    for pos, task in enumerate(job.tasks):
        if owner[pos] == -1:
            owner[pos] = len(nodes)
            nodes.append(_Node(task.id, [pos]))
    return nodes, owner


def _span(first: str, last: str, count: int) -> str:
    return f"{first} .. {last} ({count:,})"


def _edges(graph: Graph, owner: list[int]) -> list[tuple[int, int]]:
    seen: set[tuple[int, int]] = set()
    edges: list[tuple[int, int]] = []
    for pos, ds in enumerate(graph.deps):
        for d in ds:
            edge = (owner[d], owner[pos])
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)
    return edges


def render(graph: Graph, fmt: str = "mermaid", *, collapse: int = 5) -> str:
    """Draw the graph as `mermaid` (as the tutorial does), `dot` or `text`."""
    nodes, owner = _collapse(graph, collapse)
    edges = _edges(graph, owner)
    linked = {n for edge in edges for n in edge}
    if fmt == "mermaid":
        lines = ["graph LR"]
        label = [f'n{i}["{_escape(n.name)}"]' for i, n in enumerate(nodes)]
        drawn: set[int] = set()
        for a, b in edges:
            left = label[a] if a not in drawn else f"n{a}"
            right = label[b] if b not in drawn else f"n{b}"
            drawn.update((a, b))
            lines.append(f"    {left} --> {right}")
        lines.extend(f"    {label[i]}" for i in range(len(nodes)) if i not in linked)
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        lines = [f'digraph "{_escape(graph.job.id)}" {{', "    rankdir=LR;"]
        lines.extend(f'    n{i} [label="{_escape(n.name)}"];' for i, n in enumerate(nodes))
        lines.extend(f"    n{a} -> n{b};" for a, b in edges)
        lines.append("}")
        return "\n".join(lines) + "\n"
    if fmt == "text":
        parents: dict[int, list[int]] = defaultdict(list)
        for a, b in edges:
            parents[b].append(a)
        lines = [f"job {graph.job.id}"]
        for i, node in enumerate(nodes):
            after = ", ".join(nodes[p].name for p in parents.get(i, []))
            lines.append(f"  {node.name}" + (f"  <- {after}" if after else ""))
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format '{fmt}'; use mermaid, dot or text")


def _escape(text: str) -> str:
    return text.replace('"', "'")
