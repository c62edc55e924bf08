"""The Python DSL: Job, task, map, after= and the errors raised where a mistake is made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from batchflow import (
    DuplicateTaskError,
    InvalidFieldError,
    Job,
    Task,
    TaskGroup,
    UnknownTaskError,
)
from batchflow.model import OutputFile, ResourceFile


def issue_example() -> Job:
    job = Job(
        "pipeline-job",
        pool="my-compute-pool",
        priority=100,
        max_task_retry_count=3,
        max_wall_clock_time="24h",
    )
    download = job.task("download-data", "bash -c 'curl -O $URL && unzip dataset.zip'")
    job.task(
        "process-data",
        "python3 process.py",
        after=download,
        inputs=["process.py"],
        outputs=["output.csv"],
        wall_clock="1h",
        retries=3,
    )
    frames = job.map("frame-{i:03d}", "render --frame {i} --out frame-{i:03d}.png", i=range(1, 101))
    job.task("merge", "python3 merge.py", after=frames)
    return job


def test_the_issue_example_exports_as_batch_json() -> None:
    wire = issue_example().to_wire()
    assert wire["poolInfo"] == {"poolId": "my-compute-pool"}
    assert wire["priority"] == 100
    assert wire["constraints"] == {"maxWallClockTime": "P1D", "maxTaskRetryCount": 3}
    assert wire["usesTaskDependencies"] is True
    tasks = {t["id"]: t for t in wire["tasks"]}
    assert len(tasks) == 103
    assert tasks["process-data"] == {
        "id": "process-data",
        "commandLine": "python3 process.py",
        "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 3},
        "dependsOn": {"taskIds": ["download-data"]},
    }
    # frame-001 .. frame-100 are not numeric ids, so the merge lists them.
    assert tasks["merge"]["dependsOn"]["taskIds"][:2] == ["frame-001", "frame-002"]
    assert len(tasks["merge"]["dependsOn"]["taskIds"]) == 100


def test_inputs_and_outputs_are_kept_on_the_task_not_in_the_wire() -> None:
    task = issue_example().get("process-data")
    assert task is not None
    assert (task.inputs, task.outputs) == (("process.py",), ("output.csv",))
    assert "inputs" not in task.to_wire()


def test_map_of_numeric_contiguous_ids_exports_a_range() -> None:
    job = Job("j")
    parts = job.map("{i}", "work {i}", i=range(1, 101))
    merge = job.task("merge", "merge", after=parts)
    assert merge.to_wire()["dependsOn"] == {"taskIdRanges": [{"start": 1, "end": 100}]}


def test_map_of_numeric_ids_with_gaps_exports_ids() -> None:
    job = Job("j")
    parts = job.map("{i}", "work {i}", i=[1, 2, 5])
    assert job.task("m", "m", after=parts).to_wire()["dependsOn"] == {"taskIds": ["1", "2", "5"]}


def test_range_is_not_used_when_another_task_falls_inside_it() -> None:
    job = Job("j")
    job.task("3", "other")
    parts = job.map("{i}", "work {i}", i=[1, 2])
    assert job.task("m", "m", after=parts).to_wire()["dependsOn"] == {
        "taskIdRanges": [{"start": 1, "end": 2}]
    }
    wide = Job("w")
    wide.task("2", "other")
    odd = wide.map("{i}", "work {i}", i=[1, 3])
    assert wide.task("m", "m", after=odd).to_wire()["dependsOn"] == {"taskIds": ["1", "3"]}


def test_map_sweeps_the_cartesian_product() -> None:
    job = Job("sweep")
    group = job.map(
        "run-{alpha}-{seed}",
        "train --alpha 0.{alpha} --seed {seed}",
        alpha=[1, 2],
        seed=range(3),
        wall_clock="1h",
    )
    assert [t.id for t in group] == [
        "run-1-0",
        "run-1-1",
        "run-1-2",
        "run-2-0",
        "run-2-1",
        "run-2-2",
    ]
    assert group[0].to_wire()["constraints"] == {"maxWallClockTime": "PT1H"}


def test_map_templates_inputs_outputs_and_env() -> None:
    job = Job("j")
    group = job.map(
        "f-{i}",
        "render {i}",
        i=[7],
        inputs=["scene-{i}.blend"],
        outputs=["f-{i}.png"],
        env={"FRAME": "{i}"},
    )
    task = group[0]
    assert (task.inputs, task.outputs) == (("scene-7.blend",), ("f-7.png",))
    assert task.to_wire()["environmentSettings"] == [{"name": "FRAME", "value": "7"}]


def test_after_accepts_tasks_ids_lists_and_groups() -> None:
    job = Job("j")
    a = job.task("a", "x")
    b = job.task("b", "x")
    group = job.map("g{i}", "x", i=range(2))
    c = job.task("c", "x", after=[a, "b", group])
    assert c.dep_ids == ("a", "b", "g0", "g1")
    assert job.task("d", "x", after="A").dep_ids == ("a",)  # ids ignore case, as in Batch
    assert b.dep_ids == ()


def test_task_options_map_to_wire_fields() -> None:
    job = Job("j")
    task = job.task(
        "t",
        "run",
        wall_clock=timedelta(minutes=90),
        retention="7d",
        retries=-1,
        env={"A": 1},
        required_slots=2,
        display_name="The task",
        resource_files=[
            ResourceFile(http_url="https://x/a", file_path="a"),
            {"autoStorageContainerName": "inputs"},
        ],
        output_files=[
            OutputFile.model_validate(
                {
                    "filePattern": "*.png",
                    "destination": {"container": {"containerUrl": "https://a/c?sig=s"}},
                    "uploadOptions": {"uploadCondition": "taskSuccess"},
                }
            )
        ],
        exit_conditions={
            "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]
        },
        user_identity={"autoUser": {"scope": "task", "elevationLevel": "admin"}},
        container={"imageName": "ubuntu:24.04"},
    )
    wire = task.to_wire()
    assert wire["constraints"] == {
        "maxWallClockTime": "PT1H30M",
        "retentionTime": "P7D",
        "maxTaskRetryCount": -1,
    }
    assert wire["environmentSettings"] == [{"name": "A", "value": "1"}]
    assert wire["requiredSlots"] == 2
    assert wire["resourceFiles"][1] == {"autoStorageContainerName": "inputs"}
    assert wire["outputFiles"][0]["uploadOptions"] == {"uploadCondition": "taskSuccess"}
    assert wire["containerSettings"] == {"imageName": "ubuntu:24.04"}
    assert task.model().required_slots == 2
    assert job.uses_task_dependencies  # exit conditions may set a dependencyAction


def test_duplicate_id_raises_at_its_line_with_fields() -> None:
    job = Job("j")
    job.task("Frame", "x")
    with pytest.raises(DuplicateTaskError) as info:
        job.task("frame", "y")
    err = info.value
    assert (err.job_id, err.task_id, err.field) == ("j", "frame", "id")
    assert err.line is not None and err.line > 0


def test_unknown_after_raises_with_a_suggestion() -> None:
    job = Job("j")
    job.map("frame-{i:04d}", "x", i=range(1, 3))
    with pytest.raises(UnknownTaskError) as info:
        job.task("encode", "ffmpeg", after="frmae-0001")
    assert (info.value.task_id, info.value.field) == ("encode", "after")
    assert "did you mean 'frame-0001'?" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"wall_clock": "PT7D"}, "wall_clock", "did you mean 'P7D'"),
        ({"retention": "soon"}, "retention", "not an ISO 8601 duration"),
        ({"retries": -2}, "retries", "-1 (forever)"),
        ({"required_slots": 0}, "required_slots", "1 or more"),
        ({"resource_files": [{"filePath": "a"}]}, "resource_files.0", "exactly one of"),
        (
            {"exit_conditions": {"default": {"jobAction": "boom"}}},
            "exit_conditions.default.jobAction",
            "not one of",
        ),
        ({"after": 42}, "after", "not int"),
        ({"after": [3.5]}, "after", "not float"),
    ],
)
def test_bad_task_options_raise_with_the_field(
    kwargs: dict[str, object], field: str, fragment: str
) -> None:
    job = Job("j")
    with pytest.raises((InvalidFieldError, UnknownTaskError)) as info:
        job.task("t", "x", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert fragment in str(info.value)


@pytest.mark.parametrize(("task_id", "command"), [("bad id", "x"), ("x" * 65, "x"), ("ok", "")])
def test_bad_id_or_empty_command_raise(task_id: str, command: str) -> None:
    with pytest.raises(InvalidFieldError) as info:
        Job("j").task(task_id, command)
    assert info.value.field in ("id", "commandLine")


def test_bad_job_settings_raise_with_the_field() -> None:
    with pytest.raises(InvalidFieldError) as info:
        Job("j", priority=5000)
    assert info.value.field == "priority"
    with pytest.raises(InvalidFieldError) as info:
        Job("j", max_wall_clock_time="PT1D")
    assert info.value.field == "constraints.maxWallClockTime"
    assert "did you mean 'P1D'" in str(info.value)


def test_map_needs_a_parameter_and_fillable_templates() -> None:
    with pytest.raises(InvalidFieldError, match="at least one parameter"):
        Job("j").map("t", "x")
    with pytest.raises(InvalidFieldError, match="cannot be filled"):
        Job("j").map("t-{j}", "x", i=range(2))


def test_map_id_template_without_a_placeholder_says_so() -> None:
    with pytest.raises(InvalidFieldError) as info:
        Job("j").map("frame", "render {i}", i=range(3))
    assert info.value.field == "id_template"
    assert "uses none of the parameters (i)" in info.value.message
    assert "'frame-{i}'" in info.value.message


def test_map_reports_every_invalid_id_not_the_first() -> None:
    job = Job("j")
    with pytest.raises(InvalidFieldError) as info:
        job.map("t-{x}", "run {x}", x=[0.5, 1, 1.5, 2.5])
    assert "3 of 4 ids" in info.value.message
    for bad in ("'t-0.5'", "'t-1.5'", "'t-2.5'"):
        assert bad in info.value.message
    assert len(job) == 0  # nothing half-added


def test_map_zip_pairs_the_parameters() -> None:
    job = Job("j")
    group = job.map(
        "t-{scene}-{seed}", "render {scene} {seed}", scene=["a", "b"], seed=[1, 2], zip=True
    )
    assert [t.id for t in group] == ["t-a-1", "t-b-2"]
    assert [t.command_line for t in group] == ["render a 1", "render b 2"]
    product = Job("k").map("t-{scene}-{seed}", "x", scene=["a", "b"], seed=[1, 2])
    assert len(product) == 4


def test_map_zip_needs_parameters_of_one_length() -> None:
    with pytest.raises(InvalidFieldError) as info:
        Job("j").map("t-{a}-{b}", "x", a=[1, 2, 3], b=[1, 2], zip=True)
    assert info.value.field == "zip"
    assert "a has 3, b has 2" in info.value.message


def test_job_with_preparation_and_release_tasks() -> None:
    job = Job(
        "j",
        preparation={"commandLine": "setup"},
        release={"commandLine": "cleanup"},
        job_manager={"id": "jm", "commandLine": "drive"},
    )
    wire = job.to_wire(with_tasks=False)
    assert wire["jobPreparationTask"] == {"commandLine": "setup"}
    assert wire["jobManagerTask"] == {"id": "jm", "commandLine": "drive"}
    assert "tasks" not in wire


def test_dependency_ids_survive_the_compact_task_table() -> None:
    job = Job("j")
    a = job.task("a", "x")
    b = job.task("b", "x")
    odd = job.add(Task("odd,id", "x"))
    c = job.task("c", "x", after=[a, b])
    d = job.task("d", "x", after=[odd, a])
    assert c.dep_ids == ("a", "b")
    assert d.dep_ids == ("odd,id", "a")
    c.dep_ids = ("b",)
    assert c.to_wire()["dependsOn"] == {"taskIds": ["b"]}


# -- handing a task's outputs to another (inputs=[task]) ------------------------------


def map_then_merge() -> tuple[Job, Task]:
    job = Job("hand")
    prep = job.task("prep", "/bin/true", outputs=["scene.txt"])
    parts = job.map("part-{i}", "/bin/true", i=range(3), inputs=[prep], outputs=["r.txt"])
    merge = job.task("merge", "/bin/true", inputs=[parts, "merge.py"])
    return job, merge


def test_inputs_take_tasks_and_groups_whose_outputs_are_handed() -> None:
    job, merge = map_then_merge()
    assert merge.inputs == ("merge.py",)  # the local files alone
    assert job.handoffs(merge.seq) == ("part-0", "part-1", "part-2") == merge.handoffs
    # every task of the map is handed prep's outputs, none the map's own
    assert [job.handoffs(pos) for pos in range(1, 4)] == [("prep",)] * 3
    assert job.handoffs(0) == ()


def test_handing_outputs_implies_the_dependency() -> None:
    job, merge = map_then_merge()
    assert merge.dep_ids == ("part-0", "part-1", "part-2")
    assert [t.dep_ids for t in job.tasks[1:4]] == [("prep",)] * 3
    assert job.uses_task_dependencies


def test_a_handed_numeric_map_is_one_range_and_after_is_not_repeated() -> None:
    job = Job("ranges")
    parts = job.map("{i}", "/bin/true", i=range(1, 51), outputs=["r.txt"])
    one = job.task("one", "/bin/true", after=parts, inputs=parts)
    assert (one.dep_ids, one.dep_ranges) == ((), ((1, 50),))
    two = job.task("two", "/bin/true", after=[parts[0], "2"], inputs=[parts[0], parts])
    assert (two.dep_ids, two.dep_ranges) == ((), ((1, 50),))
    assert len(job.handoffs(two.seq)) == 50


def test_the_wire_format_has_only_batch_fields() -> None:
    job, _ = map_then_merge()
    merge = job.to_wire()["tasks"][-1]
    assert merge == {
        "id": "merge",
        "commandLine": "/bin/true",
        "dependsOn": {"taskIds": ["part-0", "part-1", "part-2"]},
    }


@pytest.mark.parametrize(
    "hand",
    [
        lambda parent, group: [parent],  # a task in a list
        lambda parent, group: parent,  # a task alone
        lambda parent, group: group,  # a map group with one task without outputs
    ],
)
def test_handing_a_task_without_outputs_is_an_error(hand: Any) -> None:
    job = Job("no-outputs")
    parent = job.task("quiet", "/bin/true")
    group = TaskGroup([job.task("loud", "/bin/true", outputs=["x"]), parent], "g")
    with pytest.raises(InvalidFieldError) as caught:
        job.task("child", "/bin/true", inputs=hand(parent, group))
    assert (caught.value.task_id, caught.value.field) == ("child", "inputs")
    assert "'quiet'" in caught.value.message and caught.value.line is not None
    assert job.get("child") is None


def test_map_handing_a_task_without_outputs_is_an_error() -> None:
    job = Job("no-outputs")
    parent = job.task("quiet", "/bin/true")
    with pytest.raises(InvalidFieldError) as caught:
        job.map("c-{i}", "/bin/true", i=range(2), inputs=["in.txt", parent])
    assert caught.value.field == "inputs" and "'quiet'" in caught.value.message
    assert len(job) == 1


def test_handing_a_task_of_another_job_is_an_error() -> None:
    other = Job("other")
    parent = other.task("p", "/bin/true", outputs=["x"])
    job = Job("mine")
    with pytest.raises(InvalidFieldError) as caught:
        job.task("child", "/bin/true", inputs=[parent])
    assert (caught.value.task_id, caught.value.field) == ("child", "inputs")
    assert "'p'" in caught.value.message and "'mine'" in caught.value.message


def test_inputs_refuse_what_is_neither_a_path_nor_a_task() -> None:
    job = Job("j")
    with pytest.raises(InvalidFieldError) as caught:
        job.task("t", "/bin/true", inputs=[42])  # type: ignore[list-item]
    assert caught.value.field == "inputs"


def test_a_path_like_input_is_kept_as_text() -> None:
    from pathlib import PurePosixPath

    job = Job("j")
    assert job.task("t", "/bin/true", inputs=[PurePosixPath("data/in.csv")]).inputs == (
        "data/in.csv",
    )


def test_a_task_added_to_another_job_keeps_its_handoffs() -> None:
    job, _ = map_then_merge()
    copy = Job("copy")
    for task in job.tasks:
        copy.add(task)
    assert copy.handoffs(len(copy) - 1) == ("part-0", "part-1", "part-2")
    assert Task("by-hand", "/bin/true").handoffs == ()


def test_one_path_alone_is_one_input_not_its_letters() -> None:
    job = Job("j")
    assert job.task("t", "/bin/true", inputs="data/in.csv").inputs == ("data/in.csv",)


@pytest.mark.parametrize("values", [[], [1], [1, 2]], ids=["empty", "one", "two"])
def test_a_map_parameter_no_template_uses_is_an_error_with_the_option_it_resembles(
    values: list[int],
) -> None:
    # `afer=` for `after=`: a sweep over nothing would make no task at all, without a word
    with pytest.raises(InvalidFieldError) as info:
        Job("j").map("a-{i}", "/bin/true", i=range(2), afer=values)
    assert info.value.field == "afer"
    assert "used in no template" in info.value.message
    assert info.value.message.endswith("(did you mean 'after'?)")


def test_a_map_parameter_used_only_in_inputs_outputs_or_env_is_fine() -> None:
    job = Job("j")
    job.map("a-{i}", "/bin/true", i=range(2), part=["x"], inputs=["{part}.csv"])
    job.map("b-{i}", "/bin/true", i=range(2), out=["y"], outputs=["{out}.txt"])
    job.map("c-{i}", "/bin/true", i=range(2), seed=[7], env={"SEED": "{seed}"})
    assert len(job) == 6
