"""Handing a task's collected outputs to its dependents (`inputs=[task]`), for real: a real
engine, real task processes, one node or several."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchflow.backends.local import LocalBackend
from batchflow.cli.main import app
from batchflow.dsl import Job
from tests.conftest import REPO
from tests.local.conftest import WAIT, run, stop_engine, wait_for, wait_until_done

SH = "/bin/sh -c"

# The merge checks it got every file before it merges: a missing one fails the task.
CHECK_AND_MERGE = (
    "/bin/sh -c '"
    'n=$(ls $AZ_BATCH_JOB_ID/*/result.txt | wc -l); [ "$n" -eq {count} ] || exit 3; '
    "cat $AZ_BATCH_JOB_ID/*/result.txt | sort -n > merged.txt'"
)


def test_a_child_finds_its_parents_outputs_at_job_parent_path(
    backend: LocalBackend, state_dir: Path
) -> None:
    job = Job("hand")
    parent = job.task(
        "parent",
        f"{SH} 'mkdir -p out/deep && echo top > top.txt && echo deep > out/deep/d.csv "
        "&& echo not-collected > other.log'",
        outputs=["top.txt", "out/**/*.csv"],
    )
    job.task(
        "child",
        f"{SH} 'find hand -type f | sort > seen.txt; cat hand/parent/out/deep/d.csv >> seen.txt'",
        inputs=[parent],
        outputs=["seen.txt"],
    )
    assert run(backend, job).counts.succeeded == 2
    seen = (state_dir / "results" / "hand" / "child" / "seen.txt").read_text().splitlines()
    assert seen == ["hand/parent/out/deep/d.csv", "hand/parent/top.txt", "deep"]
    # hard-linked from the results folder, not copied
    child = backend.task("hand", "child")
    assert child.task_dir is not None
    handed = Path(child.task_dir) / "wd" / "hand" / "parent" / "top.txt"
    assert (
        handed.stat().st_ino
        == (state_dir / "results" / "hand" / "parent" / "top.txt").stat().st_ino
    )


def test_a_merge_on_two_nodes_gets_every_file_of_a_map_of_20(state_dir: Path) -> None:
    backend = LocalBackend(state_dir, slots=1, nodes=2)
    try:
        job = Job("map-merge")
        parts = job.map(
            "part-{i:02d}", f"{SH} 'echo {{i}} > result.txt'", i=range(20), outputs=["result.txt"]
        )
        job.task("merge", CHECK_AND_MERGE.format(count=20), inputs=[parts], outputs=["merged.txt"])
        status = run(backend, job)
        assert status.counts.succeeded == 21, backend.read_file("map-merge", "merge", "stderr.txt")
        nodes = {t.node_id for t in backend.tasks("map-merge")}
        assert nodes == {"node-1", "node-2"}  # the parents ran on both nodes
        merged = state_dir / "results" / "map-merge" / "merge" / "merged.txt"
        assert merged.read_text().split() == [str(i) for i in range(20)]
    finally:
        backend.close()


def test_each_task_of_a_map_is_handed_the_outputs(backend: LocalBackend, state_dir: Path) -> None:
    job = Job("fan-out")
    prep = job.task("prep", f"{SH} 'echo scene > scene.txt'", outputs=["scene.txt"])
    job.map(
        "render-{i}",
        f"{SH} 'cat $AZ_BATCH_JOB_ID/prep/scene.txt > frame-{{i}}.txt; "
        "echo {i} >> frame-{i}.txt'",
        i=range(3),
        inputs=[prep],
        outputs=["frame-{i}.txt"],
    )
    assert run(backend, job).counts.succeeded == 4
    for i in range(3):
        frame = state_dir / "results" / "fan-out" / f"render-{i}" / f"frame-{i}.txt"
        assert frame.read_text() == f"scene\n{i}\n"


def test_a_parent_that_collected_nothing_does_not_stop_the_child(
    backend: LocalBackend, state_dir: Path
) -> None:
    job = Job("empty-parent")
    quiet = job.task("quiet", "/bin/true", outputs=["maybe.txt"])
    loud = job.task("loud", f"{SH} 'echo here > result.txt'", outputs=["result.txt"])
    job.task(
        "child",
        f"{SH} 'ls $AZ_BATCH_JOB_ID > seen.txt'",
        inputs=[quiet, loud],
        outputs=["seen.txt"],
    )
    assert run(backend, job).counts.succeeded == 3
    seen = (state_dir / "results" / "empty-parent" / "child" / "seen.txt").read_text()
    assert seen.split() == ["loud"]


def test_the_child_starts_only_after_its_handed_parent_succeeded(
    backend: LocalBackend, tmp_path: Path, state_dir: Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    job = Job("ordered")
    # The parent's result exists only once the test opens the gate (a FIFO: cat blocks).
    parent = job.task("parent", f"{SH} 'cat {gate} > result.txt'", outputs=["result.txt"])
    job.task("child", f"{SH} 'cat ordered/parent/result.txt'", inputs=[parent])
    backend.submit(job)
    wait_for(lambda: backend.task("ordered", "parent").state == "running")
    # Two free slots, yet the child waits for the parent.
    assert backend.task("ordered", "child").state == "active"
    _write_to_fifo(gate, b"opened\n")
    status = wait_until_done(backend, "ordered")
    assert status.counts.succeeded == 2
    assert backend.read_file("ordered", "child", "stdout.txt") == b"opened\n"


def test_a_failed_parent_blocks_the_child_it_hands_to(backend: LocalBackend) -> None:
    job = Job("blocked")
    parent = job.task("parent", f"{SH} 'echo partial > result.txt; exit 1'", outputs=["result.txt"])
    job.task("child", "/bin/true", inputs=[parent])
    status = run(backend, job)
    assert (status.counts.failed, status.counts.succeeded) == (1, 0)
    child = backend.task("blocked", "child")
    assert (child.state, child.start_time) == ("active", None)


def _write_to_fifo(path: Path, data: bytes) -> None:
    """Write to a FIFO once its reader opened it (ENXIO until then)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return


# -- through the CLI ---------------------------------------------------------------------


runner = CliRunner()


def _readme_block(first_line: str) -> str:
    """The README's code block that starts with `first_line`, as shown there."""
    text = (REPO / "README.md").read_text()
    start = text.index(first_line)
    return text[start : text.index("```", start)]


def test_the_readme_map_merge_example_runs_on_two_nodes(tmp_path: Path, state_dir: Path) -> None:
    flow = tmp_path / "map_merge.py"
    flow.write_text(_readme_block("# flows/map_merge.py"))
    result = runner.invoke(
        app, ["submit", str(flow), "--state-dir", str(state_dir), "--nodes", "2"]
    )
    assert result.exit_code == 0, result.stderr
    merged = state_dir / "results" / "map-merge" / "merge" / "merged.txt"
    assert merged.read_text().split() == [str(i) for i in range(20)]
    stop_engine(state_dir)


@pytest.mark.parametrize("command", ["validate", "submit"])
def test_handing_a_task_without_outputs_is_one_line_and_exit_2(
    command: str, tmp_path: Path, state_dir: Path
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        "from batchflow import Job\n"
        "job = Job('bad-hand')\n"
        "quiet = job.task('quiet', '/bin/true')\n"
        "job.task('child', '/bin/true', inputs=[quiet])\n"
    )
    args = [command, str(flow)] + (["--state-dir", str(state_dir)] if command == "submit" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{flow}:4:" in lines[0] and "task 'child' inputs" in lines[0] and "'quiet'" in lines[0]
    assert not (state_dir / "state.db").exists()
