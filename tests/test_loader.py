"""Reading FLOW files: every JSON form, Python flows, and every kind of bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchflow.exceptions import FlowLoadError
from batchflow.loader import load

TASKS = [
    {"id": "a", "commandLine": "x"},
    {"id": "b", "commandLine": "y", "dependsOn": {"taskIds": ["a"]}},
]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("form", "data"),
    [
        ("task array", TASKS),
        ("task collection", {"value": TASKS}),
        ("job with tasks", {"id": "pipeline", "poolInfo": {"poolId": "p"}, "tasks": TASKS}),
    ],
)
def test_json_forms_with_tasks(tmp_path: Path, form: str, data: object) -> None:
    flow = load(write(tmp_path, "pipeline.json", json.dumps(data)))
    job = flow.job()
    assert [t.id for t in job.tasks] == ["a", "b"]
    assert job.tasks[1].dep_ids == ("a",)
    assert job.id == "pipeline"
    assert job.uses_task_dependencies


def test_single_task_object(tmp_path: Path) -> None:
    flow = load(
        write(tmp_path, "t.json", json.dumps(TASKS[0])), job_id="render-job-001", pool_id="pool-1"
    )
    job = flow.job()
    assert (job.id, job.spec.pool_info.pool_id if job.spec.pool_info else None) == (
        "render-job-001",
        "pool-1",
    )
    assert [t.id for t in job.tasks] == ["a"]


def test_job_document_without_tasks(tmp_path: Path) -> None:
    doc = {"id": "j", "poolInfo": {"poolId": "p"}, "priority": 5, "usesTaskDependencies": True}
    job = load(write(tmp_path, "job.json", json.dumps(doc))).job()
    assert job.to_wire(with_tasks=False) == doc


def test_default_job_id_comes_from_the_file_name(tmp_path: Path) -> None:
    assert load(write(tmp_path, "my tasks!.json", json.dumps(TASKS))).job().id == "my-tasks"


def test_json_is_detected_without_the_suffix(tmp_path: Path) -> None:
    assert load(write(tmp_path, "tasks.txt", json.dumps(TASKS))).job().id == "tasks"


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.json", "", "is empty"),
        ("blank.json", "  \n", "is empty"),
        ("truncated.json", '[{"id": "a", "commandLine"', "is not valid JSON"),
        ("latin1.json", b'[{"id": "caf\xe9"}]', "is not UTF-8"),
        ("number.json", "42", "holds a number"),
        ("string.json", '"hello"', "holds a string"),
        ("null.json", "null", "holds null"),
        ("value.json", '{"value": 3}', "'value' holds a number"),
        ("tasks.json", '{"id": "j", "tasks": {"a": 1}}', "'tasks' holds an object"),
        ("deep.json", "[" * 100000 + "]" * 100000, "is not valid JSON"),
        ("flow.yaml", "jobs: []", "neither a .py nor a .json"),
        ("bad.py", "x = (", "syntax error"),
        ("none.py", "x = 1", "defines no Job"),
        (
            "raises.py",
            "from batchflow import Job\nraise RuntimeError('boom')",
            "RuntimeError: boom",
        ),
        ("exits.py", "import sys\nsys.exit(3)", "exit(3)"),
    ],
)
def test_bad_files_are_one_clear_error(
    tmp_path: Path, name: str, content: str | bytes, fragment: str
) -> None:
    with pytest.raises(FlowLoadError) as info:
        load(write(tmp_path, name, content))
    assert fragment in str(info.value)
    assert info.value.file and info.value.file.endswith(name)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FlowLoadError, match="no such file"):
        load(tmp_path / "nope.py")
    with pytest.raises(FlowLoadError, match="is a directory"):
        load(tmp_path)


def test_json_task_of_the_wrong_type_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    flow = load(write(tmp_path, "t.json", '[1, {"id": "a", "commandLine": "x"}]'))
    assert [p.field for p in flow.problems] == ["[0]"]
    assert [t.id for t in flow.job().tasks] == ["a"]


@pytest.mark.parametrize(
    "tasks",
    [[{"id": "a b", "commandLine": "/bin/true"}], [5], [{"id": "t"}]],
    ids=["bad-id", "not-an-object", "no-command"],
)
def test_a_file_whose_every_task_is_refused_gets_no_second_error_for_an_empty_job(
    tmp_path: Path, tasks: list[object]
) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    errors = [p for p in load(path, job_id="j").validate() if p.severity == "error"]
    assert len(errors) == 1, [str(p) for p in errors]
    assert "no tasks" not in errors[0].message


def test_an_empty_task_array_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text("[]")
    errors = [p for p in load(path, job_id="j").validate() if p.severity == "error"]
    assert [p.code for p in errors] == ["no-tasks"]


def test_error_in_python_flow_points_at_the_flow_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "flow.py",
        (
            "from batchflow import Job\n"
            "job = Job('render')\n"
            "frames = job.map('frame-{i:04d}', 'x', i=range(1, 3))\n"
            "\n"
            "job.task('encode', 'ffmpeg', after='frmae-0001')\n"
        ),
    )
    with pytest.raises(FlowLoadError) as info:
        load(path)
    err = info.value
    assert (err.line, err.job_id, err.task_id, err.field) == (5, "render", "encode", "after")
    assert "did you mean 'frame-0001'?" in str(err)
    assert "Traceback" not in str(err)


def test_python_flow_collects_every_module_level_job(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "flow.py",
        (
            "from batchflow import Job\n"
            "first = Job('first')\nfirst.task('a', 'x')\n"
            "second = Job('second')\nalias = first\n"
        ),
    )
    flow = load(path)
    assert [j.id for j in flow.jobs] == ["first", "second"]
    assert flow.job("SECOND").id == "second"
    with pytest.raises(FlowLoadError, match="pick one with --job"):
        flow.job()
    with pytest.raises(FlowLoadError, match="no job 'third'"):
        flow.job("third")


def test_python_flow_can_import_its_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "helpers.py", "COMMAND = '/bin/true'\n")
    path = write(
        tmp_path,
        "flow.py",
        "from batchflow import Job\nfrom helpers import COMMAND\n"
        "job = Job('j')\njob.task('a', COMMAND)\n",
    )
    assert load(path).job().tasks[0].command_line == "/bin/true"


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        (
            "job.task('b', 'x', after=frist)",
            "NameError: name 'frist' is not defined (did you mean 'first'?)",
        ),
        (
            "job.tsk('b', 'x')",
            "AttributeError: 'Job' object has no attribute 'tsk' (did you mean 'task'?)",
        ),
        (
            "job.task('b', 'x', wallclock='1m')",
            "unexpected keyword argument 'wallclock' (did you mean 'wall_clock'?)",
        ),
        ("Job('k', prio=1)", "unexpected keyword argument 'prio' (did you mean 'priority'?)"),
        ("job.task('b', 'x', zzzzzz=1)", "unexpected keyword argument 'zzzzzz'"),
    ],
    ids=["name", "attribute", "task-keyword", "job-keyword", "nothing-close"],
)
def test_a_misspelt_name_in_a_flow_gets_what_it_resembles(
    tmp_path: Path, line: str, hint: str
) -> None:
    path = write(
        tmp_path,
        "flow.py",
        f"from batchflow import Job\njob = Job('j')\nfirst = job.task('a', 'x')\n{line}\n",
    )
    with pytest.raises(FlowLoadError) as info:
        load(path)
    assert info.value.line == 4
    assert info.value.message.endswith(hint), info.value.message
    if "zzzzzz" in line:
        assert "did you mean" not in info.value.message
