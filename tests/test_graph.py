"""Dependency resolution, cycles, order and drawing."""

from __future__ import annotations

import itertools

import pytest

from batchflow import Job
from batchflow.dsl import Task
from batchflow.graph import Graph, render


def raw_job(*tasks: tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]]) -> Job:
    """A job built from (id, dep ids, dep ranges), as the JSON loader builds one."""
    job = Job("j")
    for task_id, ids, ranges in tasks:
        job.add(Task(task_id, "x", dep_ids=ids, dep_ranges=ranges))
    return job


def test_ranges_match_numeric_ids_ignoring_leading_zeros() -> None:
    job = raw_job(("004", (), ()), ("7", (), ()), ("5flamingoes", (), ()), ("m", (), ((1, 10),)))
    graph = Graph.of(job)
    assert sorted(graph.deps[3]) == [0, 1]  # '004' and '7'; never '5flamingoes'
    assert graph.incomplete_ranges == [(3, 0, 1, 10, 8)]


def test_complete_range_is_not_reported() -> None:
    job = raw_job(("1", (), ()), ("2", (), ()), ("02", (), ()), ("m", (), ((1, 2),)))
    assert Graph.of(job).incomplete_ranges == []


def test_unknown_ids_are_collected() -> None:
    graph = Graph.of(raw_job(("a", (), ()), ("b", ("a", "nope"), ())))
    assert graph.unknown == [(1, "dependsOn.taskIds[1]", "nope")]
    assert graph.deps[1] == (0,)


@pytest.mark.parametrize(
    ("tasks", "cycle"),
    [
        ([("a", ("a",))], ["a", "a"]),
        ([("a", ("b",)), ("b", ("a",))], ["a", "b", "a"]),
        (
            [("x", ()), ("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ("c",))],
            ["a", "b", "c", "a"],
        ),
    ],
)
def test_cycles_are_found_and_named(
    tasks: list[tuple[str, tuple[str, ...]]], cycle: list[str]
) -> None:
    job = raw_job(*[(t, deps, ()) for t, deps in tasks])
    found = Graph.of(job).find_cycle()
    assert found is not None
    names = [job.tasks[i].id for i in found]
    assert names[0] == names[-1]
    assert sorted(names[:-1]) == sorted(cycle[:-1])
    # Each task on the cycle waits for the one before it.
    for before, after in itertools.pairwise(names):
        assert before in job.get(after).dep_ids  # type: ignore[union-attr]


def test_forward_references_without_cycle_are_ordered() -> None:
    job = raw_job(("b", ("a",), ()), ("a", (), ()))
    graph = Graph.of(job)
    assert graph.find_cycle() is None
    assert graph.topological_order() == [1, 0]


def test_topological_order_refuses_a_cycle() -> None:
    graph = Graph.of(raw_job(("a", ("b",), ()), ("b", ("a",), ())))
    with pytest.raises(ValueError, match="cycle"):
        graph.topological_order()


def pipeline() -> Job:
    job = Job("pipeline-job")
    a = job.task("download-data", "x")
    b = job.task("process-data", "x", after=a)
    job.task("generate-report", "x", after=b)
    return job


def test_mermaid_as_the_tutorial_draws_it() -> None:
    assert render(Graph.of(pipeline()), "mermaid") == (
        "graph LR\n"
        '    n0["download-data"] --> n1["process-data"]\n'
        '    n1 --> n2["generate-report"]\n'
    )


def test_maps_collapse_into_one_node_with_a_count() -> None:
    job = Job("render")
    frames = job.map("frame-{i:04d}", "x", i=range(1, 2001))
    job.task("encode", "x", after=frames)
    text = render(Graph.of(job), "mermaid")
    assert '["frame-0001 .. frame-2000 (2,000)"] --> ' in text
    assert text.count("-->") == 1


def test_similar_json_tasks_collapse_too() -> None:
    job = raw_job(*[(str(i), (), ()) for i in range(1, 101)], ("merge", (), ((1, 100),)))
    text = render(Graph.of(job), "mermaid")
    assert '"1 .. 100 (100)"' in text
    assert len(text.splitlines()) == 2


def test_dot_and_text() -> None:
    graph = Graph.of(pipeline())
    dot = render(graph, "dot")
    assert dot.startswith('digraph "pipeline-job" {')
    assert "n0 -> n1;" in dot and "n1 -> n2;" in dot
    text = render(graph, "text")
    assert "process-data  <- download-data" in text


def test_lonely_tasks_are_drawn() -> None:
    job = Job("j")
    job.task("alone", "x")
    assert 'n0["alone"]' in render(Graph.of(job), "mermaid")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(Graph.of(pipeline()), "svg")


def test_python_dependencies_resolve_in_one_sweep_as_the_general_path_does() -> None:
    job = Job("j")
    first = [job.task(f"a{i}", "x") for i in range(3)]
    second = [job.task(f"b{i}", "x", after=[first[i], first[(i + 1) % 3]]) for i in range(3)]
    job.task("c", "x", after=second)
    job.task("lonely", "x")
    swept = Graph.of(job)
    assert swept.deps == [(), (), (), (0, 1), (1, 2), (2, 0), (3, 4, 5), ()]
    assert swept.ordered and swept.unknown == [] and swept.find_cycle() is None
    # The same job as JSON would describe it: ids as tuples take the general path.
    general = raw_job(*[(t.id, t.dep_ids, ()) for t in job.tasks])
    assert Graph.of(general).deps == swept.deps


def test_mixed_case_ids_fall_back_to_the_general_path() -> None:
    job = Job("j")
    a = job.task("Alpha", "x")
    job.task("beta", "x", after=a)
    assert Graph.of(job).deps == [(), (0,)]
