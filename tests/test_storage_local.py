"""The DSL's `inputs=` (stage_inputs) and `outputs=` (collect_outputs) on the local disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.exceptions import FlowError, InputNotFoundError, InvalidFieldError
from batchflow.storage import check_inputs, collect_outputs, stage_handoffs, stage_inputs


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    """A flow's folder: a script, a data file and a nested directory."""
    root = tmp_path / "flow"
    (root / "data" / "nested").mkdir(parents=True)
    (root / "render.py").write_text("print('render')\n")
    (root / "data" / "scene.txt").write_text("scene")
    (root / "data" / "nested" / "deep.bin").write_bytes(b"\x00\x01")
    return root


def test_a_file_input_is_hard_linked_under_its_base_name(flow_dir: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    stage_inputs(["render.py", "data/scene.txt"], flow_dir, wd)
    assert (wd / "render.py").read_text() == "print('render')\n"
    assert (wd / "scene.txt").read_text() == "scene"
    assert (wd / "render.py").stat().st_ino == (flow_dir / "render.py").stat().st_ino


def test_link_false_copies(flow_dir: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    stage_inputs(["render.py"], flow_dir, wd, link=False)
    assert (wd / "render.py").read_text() == "print('render')\n"
    assert (wd / "render.py").stat().st_ino != (flow_dir / "render.py").stat().st_ino


def test_a_directory_input_is_copied_recursively(flow_dir: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    stage_inputs(["data"], flow_dir, wd)
    assert (wd / "data" / "scene.txt").read_text() == "scene"
    assert (wd / "data" / "nested" / "deep.bin").read_bytes() == b"\x00\x01"


def test_staging_again_replaces_what_is_there(flow_dir: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "render.py").write_text("stale")
    (wd / "data").mkdir()
    (wd / "data" / "scene.txt").write_text("stale")
    stage_inputs(["render.py", "data"], flow_dir, wd)
    stage_inputs(["render.py", "data"], flow_dir, wd)
    assert (wd / "render.py").read_text() == "print('render')\n"
    assert (wd / "data" / "scene.txt").read_text() == "scene"


def test_absolute_inputs_are_taken_as_is(flow_dir: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    stage_inputs([str(flow_dir / "render.py")], tmp_path / "elsewhere", wd)
    assert (wd / "render.py").exists()


def test_a_missing_input_is_a_file_not_found_error_naming_it(
    flow_dir: Path, tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    with pytest.raises(InputNotFoundError) as caught:
        stage_inputs(["render.py", "scene.blend"], flow_dir, wd, job_id="j", task_id="t1")
    error = caught.value
    assert isinstance(error, FileNotFoundError)
    assert isinstance(error, FlowError)
    assert error.filename == str(flow_dir / "scene.blend")
    assert (error.task_id, error.job_id, error.field) == ("t1", "j", "inputs")
    assert "'scene.blend'" in str(error)


def test_check_inputs_finds_a_missing_input_before_anything_is_staged(
    flow_dir: Path, tmp_path: Path
) -> None:
    wd = tmp_path / "wd"
    wd.mkdir()
    with pytest.raises(InputNotFoundError):
        stage_inputs(["render.py", "missing.txt"], flow_dir, wd)
    assert list(wd.iterdir()) == []
    assert check_inputs(["render.py"], flow_dir) == [(flow_dir / "render.py", "render.py")]


def test_two_inputs_with_one_name_are_refused(flow_dir: Path, tmp_path: Path) -> None:
    (flow_dir / "other").mkdir()
    (flow_dir / "other" / "scene.txt").write_text("other")
    with pytest.raises(InvalidFieldError) as caught:
        check_inputs(["data/scene.txt", "other/scene.txt"], flow_dir, task_id="t")
    assert caught.value.field == "inputs"
    assert "scene.txt" in str(caught.value)


@pytest.fixture
def finished_task(tmp_path: Path) -> Path:
    """A task directory after its command wrote some files."""
    wd = tmp_path / "task" / "wd"
    (wd / "sub" / "deeper").mkdir(parents=True)
    (wd / "frame-01.png").write_bytes(b"png1")
    (wd / "frame-02.png").write_bytes(b"png2")
    (wd / "notes.txt").write_text("n")
    (wd / "sub" / "a.csv").write_text("a")
    (wd / "sub" / "deeper" / "b.csv").write_text("b")
    (wd.parent / "stdout.txt").write_text("out")
    return wd.parent


def test_collect_outputs_copies_matches_keeping_relative_paths(
    finished_task: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    copied = collect_outputs(
        ["frame-*.png", "sub/**/*.csv", "../stdout.txt", "nothing-*.bin"],
        finished_task / "wd",
        results,
    )
    relative = sorted(p.relative_to(results).as_posix() for p in copied)
    assert relative == [
        "frame-01.png",
        "frame-02.png",
        "stdout.txt",
        "sub/a.csv",
        "sub/deeper/b.csv",
    ]
    assert (results / "sub" / "deeper" / "b.csv").read_text() == "b"
    assert (results / "stdout.txt").read_text() == "out"
    # copies, not links: the task's directory can be cleaned up later
    assert (results / "frame-01.png").stat().st_ino != (
        finished_task / "wd" / "frame-01.png"
    ).stat().st_ino


def test_collect_outputs_overwrites_and_counts_each_file_once(
    finished_task: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "notes.txt").write_text("old")
    copied = collect_outputs(["*.txt", "notes.txt"], finished_task / "wd", results)
    assert copied == [results / "notes.txt"]
    assert (results / "notes.txt").read_text() == "n"


@pytest.fixture
def job_results(tmp_path: Path) -> Path:
    """A job's results folder as collect_outputs fills it: two parents, one nested file."""
    root = tmp_path / "results" / "job"
    for parent in ("a", "b"):
        wd = tmp_path / f"wd-{parent}"
        (wd / "out").mkdir(parents=True)
        (wd / "result.txt").write_text(parent)
        (wd / "out" / "deep.csv").write_text(f"{parent},1\n")
        collect_outputs(["result.txt", "out/*.csv"], wd, root / parent)
    return root


def test_handed_outputs_land_at_job_parent_path(job_results: Path, tmp_path: Path) -> None:
    wd = tmp_path / "child"
    wd.mkdir()
    assert stage_handoffs(["a", "b"], job_results, wd, job_id="job") == 4
    found = sorted(str(p.relative_to(wd)) for p in wd.rglob("*") if p.is_file())
    assert found == [
        "job/a/out/deep.csv",
        "job/a/result.txt",
        "job/b/out/deep.csv",
        "job/b/result.txt",
    ]
    assert (wd / "job" / "b" / "out" / "deep.csv").read_text() == "b,1\n"


def test_handed_outputs_are_hard_linked_or_copied(job_results: Path, tmp_path: Path) -> None:
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    stage_handoffs(["a"], job_results, linked, job_id="job")
    stage_handoffs(["a"], job_results, copied, job_id="job", link=False)
    source = (job_results / "a" / "result.txt").stat().st_ino
    assert (linked / "job" / "a" / "result.txt").stat().st_ino == source
    assert (copied / "job" / "a" / "result.txt").stat().st_ino != source
    assert (copied / "job" / "a" / "result.txt").read_text() == "a"


def test_a_parent_that_collected_nothing_is_no_error(job_results: Path, tmp_path: Path) -> None:
    wd = tmp_path / "child"
    wd.mkdir()
    assert stage_handoffs(["never-ran", "a"], job_results, wd, job_id="job") == 2
    assert not (wd / "job" / "never-ran").exists()
