"""What `validate` says about files between tasks: a parent's file a child names but is
not handed (`not-handed`), and never for a handed parent."""

from __future__ import annotations

import pytest

from batchflow import Job, TaskGroup, validate

SH = "/bin/sh -c"


def not_handed(job: Job) -> list[tuple[str | None, str | None, str]]:
    return [(p.task_id, p.field, p.message) for p in validate(job) if p.code == "not-handed"]


def parts_job() -> tuple[Job, TaskGroup]:
    job = Job("j")
    parts = job.map(
        "part-{i}", f"{SH} 'echo {{i}} > result.txt'", i=range(3), outputs=["result.txt"]
    )
    return job, parts


# (the child's command line, its local inputs): each names a file part-0 collects
NAMES_A_PARENT_FILE: list[tuple[str, tuple[str, ...]]] = [
    # the literal name, under a path
    (f"{SH} 'cat */result.txt'", ()),
    # a glob that covers the parent's literal name
    (f"{SH} 'cat *.txt'", ()),
    # the name where it would be if it were handed
    (f"{SH} 'cat $AZ_BATCH_JOB_ID/part-0/result.txt'", ()),
    # an input named like the parent's file (a local file, not the parent's)
    ("/bin/true", ("data/result.txt",)),
]


@pytest.mark.parametrize(("command", "inputs"), NAMES_A_PARENT_FILE)
def test_a_child_naming_a_parents_file_it_is_not_handed_is_warned(
    command: str, inputs: tuple[str, ...]
) -> None:
    job, parts = parts_job()
    job.task("merge", command, after=parts, inputs=list(inputs))
    found = not_handed(job)
    assert len(found) == 1
    task_id, field, message = found[0]
    assert task_id == "merge"
    assert field == ("inputs" if inputs else "commandLine")
    assert "'part-0'" in message and "'result.txt'" in message and "inputs=[" in message


@pytest.mark.parametrize(("command", "inputs"), NAMES_A_PARENT_FILE)
def test_a_handed_parent_is_never_warned_about(command: str, inputs: tuple[str, ...]) -> None:
    job, parts = parts_job()
    job.task("merge", command, inputs=[parts, *inputs])
    assert not_handed(job) == []


# parent's outputs=, child's command line: nothing the child names is the parent's file
UNRELATED: list[tuple[list[str], str]] = [
    (["result.txt"], f"{SH} 'ls'"),  # names no file
    (["*.csv"], "python3 merge.py"),  # a glob that does not match the words
    (["*"], f"{SH} 'cat notes.md'"),  # a bare wildcard would match anything: skipped
    (["$AZ_BATCH_TASK_ID.txt"], f"{SH} 'cat x.txt'"),  # made from the environment
]


@pytest.mark.parametrize(("outputs", "command"), UNRELATED)
def test_files_a_parent_does_not_collect_are_not_warned_about(
    outputs: list[str], command: str
) -> None:
    job = Job("j")
    parent = job.task("parent", "/bin/true", outputs=outputs)
    job.task("child", command, after=parent, inputs=["merge.py"])
    assert not_handed(job) == []


def test_a_glob_output_pattern_matches_the_named_file() -> None:
    job = Job("j")
    parent = job.task("stats", "/bin/true", outputs=["out/**/*.csv"])
    job.task("plot", "python3 plot.py totals.csv", after=parent, inputs=["plot.py"])
    assert [(t, f) for t, f, _ in not_handed(job)] == [("plot", "commandLine")]


def test_only_dependencies_are_considered() -> None:
    job = Job("j")
    job.task("unrelated", "/bin/true", outputs=["result.txt"])
    job.task("reader", f"{SH} 'cat result.txt'")
    assert not_handed(job) == []


def test_the_handed_parent_of_two_is_skipped_and_the_other_named() -> None:
    job = Job("j")
    a = job.task("a", "/bin/true", outputs=["a.txt"])
    b = job.task("b", "/bin/true", outputs=["b.txt"])
    job.task("child", f"{SH} 'cat */a.txt */b.txt'", inputs=[a], after=b)
    found = not_handed(job)
    assert len(found) == 1 and "'b'" in found[0][2] and "'a'" not in found[0][2]


def test_a_stranded_download_suggests_the_handoff_in_python() -> None:
    job = Job("j")
    get = job.task("get", "/bin/bash -c 'wget https://x/d.zip && unzip d.zip'")
    job.task("use", "/bin/bash -c 'ls'", after=get)
    found = [p for p in validate(job) if p.code == "no-handoff"]
    assert len(found) == 1 and "'get' in inputs=[...]" in found[0].message


def test_the_warning_is_folded_like_the_others() -> None:
    job, parts = parts_job()
    for i in range(5):
        job.task(f"reader-{i}", f"{SH} 'cat */result.txt'", after=parts)
    found = not_handed(job)
    assert len(found) == 3 and "(and 2 more like this)" in found[-1][2]
