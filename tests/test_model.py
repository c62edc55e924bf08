"""The wire models: Batch's field rules, a failing and a passing case for each."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from batchflow.model import JobSpec, ResourceFile, TaskSpec
from batchflow.validation import problems_from_validation_error

SAS = "https://acct.blob.core.windows.net/out?sv=2024&sig=abc"


def task(**fields: Any) -> dict[str, Any]:
    return {"id": "t1", "commandLine": "/bin/true", **fields}


def errors_of(
    payload: dict[str, Any], cls: type[TaskSpec] | type[JobSpec] = TaskSpec
) -> dict[str, str]:
    """{field path: message} of every error the model raises for `payload`."""
    try:
        cls.model_validate(payload)
    except ValidationError as exc:
        return {p.field or "": p.message for p in problems_from_validation_error(exc)}
    return {}


# (rule, failing payload, field path, message fragment, passing payload)
TASK_RULES = [
    ("id too long", task(id="x" * 65), "id", "at most 64", task(id="x" * 64)),
    ("id bad characters", task(id="frame 1"), "id", "did you mean 'frame-1'", task(id="frame_1-A")),
    ("id empty", task(id=""), "id", "must not be empty", task(id="a")),
    ("commandLine required", {"id": "t1"}, "commandLine", "is required", task()),
    ("commandLine empty", task(commandLine=""), "commandLine", "must not be empty", task()),
    ("unknown field", task(comandLine="x"), "comandLine", "did you mean 'commandLine'", task()),
    (
        "resource file without a source",
        task(resourceFiles=[{"filePath": "a"}]),
        "resourceFiles[0]",
        "exactly one of",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "a"}]),
    ),
    (
        "resource file with two sources",
        task(
            resourceFiles=[
                {"httpUrl": "https://x/a", "autoStorageContainerName": "c", "filePath": "a"}
            ]
        ),
        "resourceFiles[0]",
        "got httpUrl, autoStorageContainerName",
        task(resourceFiles=[{"autoStorageContainerName": "c"}]),
    ),
    (
        "httpUrl needs filePath",
        task(resourceFiles=[{"httpUrl": "https://x/a"}]),
        "resourceFiles[0]",
        "filePath is required",
        task(resourceFiles=[{"storageContainerUrl": "https://x/c"}]),
    ),
    (
        "filePath absolute",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "/etc/passwd"}]),
        "resourceFiles[0].filePath",
        "is absolute",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "data/a"}]),
    ),
    (
        "filePath escaping",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "data/../../a"}]),
        "resourceFiles[0].filePath",
        "escapes the working directory",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "data/../a"}]),
    ),
    (
        "fileMode not octal",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "a", "fileMode": "rwx"}]),
        "resourceFiles[0]",
        "octal",
        task(resourceFiles=[{"httpUrl": "https://x/a", "filePath": "a", "fileMode": "0755"}]),
    ),
    (
        "output file without destination",
        task(
            outputFiles=[
                {"filePattern": "*.txt", "uploadOptions": {"uploadCondition": "taskCompletion"}}
            ]
        ),
        "outputFiles[0].destination",
        "is required",
        task(
            outputFiles=[
                {
                    "filePattern": "*.txt",
                    "destination": {"container": {"containerUrl": SAS}},
                    "uploadOptions": {"uploadCondition": "taskCompletion"},
                }
            ]
        ),
    ),
    (
        "bad uploadCondition",
        task(
            outputFiles=[
                {
                    "filePattern": "*.txt",
                    "destination": {"container": {"containerUrl": SAS}},
                    "uploadOptions": {"uploadCondition": "always"},
                }
            ]
        ),
        "outputFiles[0].uploadOptions.uploadCondition",
        "not one of taskSuccess, taskFailure, taskCompletion",
        task(
            outputFiles=[
                {
                    "filePattern": "*.txt",
                    "destination": {"container": {"containerUrl": SAS}},
                    "uploadOptions": {"uploadCondition": "TASKSUCCESS"},
                }
            ]
        ),
    ),
    (
        "maxTaskRetryCount below -1",
        task(constraints={"maxTaskRetryCount": -2}),
        "constraints.maxTaskRetryCount",
        "greater than or equal to -1",
        task(constraints={"maxTaskRetryCount": -1}),
    ),
    (
        "requiredSlots below 1",
        task(requiredSlots=0),
        "requiredSlots",
        "greater than or equal to 1",
        task(requiredSlots=1),
    ),
    (
        "bad duration",
        task(constraints={"retentionTime": "PT7D"}),
        "constraints.retentionTime",
        "did you mean 'P7D'",
        task(constraints={"retentionTime": "P7D"}),
    ),
    (
        "range start after end",
        task(dependsOn={"taskIdRanges": [{"start": 9, "end": 3}]}),
        "dependsOn.taskIdRanges[0]",
        "start 9 is after end 3",
        task(dependsOn={"taskIdRanges": [{"start": 3, "end": 3}]}),
    ),
    (
        "bad jobAction",
        task(exitConditions={"default": {"jobAction": "explode"}}),
        "exitConditions.default.jobAction",
        "not one of none, disable, terminate",
        task(exitConditions={"default": {"jobAction": "Terminate"}}),
    ),
    (
        "bad dependencyAction",
        task(
            exitConditions={"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "skip"}}]}
        ),
        "exitConditions.exitCodes[0].exitOptions.dependencyAction",
        "not one of satisfy, block",
        task(
            exitConditions={
                "exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]
            }
        ),
    ),
    (
        "exit code range start after end",
        task(exitConditions={"exitCodeRanges": [{"start": 5, "end": 1, "exitOptions": {}}]}),
        "exitConditions.exitCodeRanges[0]",
        "start 5 is after end 1",
        task(exitConditions={"exitCodeRanges": [{"start": 1, "end": 5, "exitOptions": {}}]}),
    ),
    (
        "user identity with both forms",
        task(userIdentity={"username": "u", "autoUser": {"scope": "pool"}}),
        "userIdentity",
        "not both",
        task(userIdentity={"autoUser": {"scope": "task", "elevationLevel": "admin"}}),
    ),
    (
        "bad auto-user scope",
        task(userIdentity={"autoUser": {"scope": "node"}}),
        "userIdentity.autoUser.scope",
        "not one of task, pool",
        task(userIdentity={"autoUser": {"scope": "pool"}}),
    ),
    (
        "container without image",
        task(containerSettings={"containerRunOptions": "--rm"}),
        "containerSettings.imageName",
        "is required",
        task(containerSettings={"imageName": "ubuntu:24.04"}),
    ),
    (
        "multi-instance without coordination command",
        task(multiInstanceSettings={"numberOfInstances": 2}),
        "multiInstanceSettings.coordinationCommandLine",
        "is required",
        task(multiInstanceSettings={"numberOfInstances": 2, "coordinationCommandLine": "true"}),
    ),
    (
        "displayName too long",
        task(displayName="x" * 1025),
        "displayName",
        "at most 1024",
        task(displayName="x" * 1024),
    ),
]


@pytest.mark.parametrize(
    ("rule", "bad", "field", "fragment", "good"), TASK_RULES, ids=[r[0] for r in TASK_RULES]
)
def test_task_rule(
    rule: str, bad: dict[str, Any], field: str, fragment: str, good: dict[str, Any]
) -> None:
    found = errors_of(bad)
    assert field in found, f"{rule}: expected an error at {field}, got {found}"
    assert fragment in found[field]
    assert errors_of(good) == {}


def job(**fields: Any) -> dict[str, Any]:
    return {"id": "j1", "poolInfo": {"poolId": "p"}, **fields}


JOB_RULES = [
    (
        "priority above 1000",
        job(priority=1001),
        "priority",
        "less than or equal to 1000",
        job(priority=1000),
    ),
    (
        "priority below -1000",
        job(priority=-1001),
        "priority",
        "greater than or equal to -1000",
        job(priority=-1000),
    ),
    (
        "maxParallelTasks zero",
        job(maxParallelTasks=0),
        "maxParallelTasks",
        "-1 (no limit)",
        job(maxParallelTasks=-1),
    ),
    (
        "bad onAllTasksComplete",
        job(onAllTasksComplete="stop"),
        "onAllTasksComplete",
        "not one of noAction, terminateJob",
        job(onAllTasksComplete="terminatejob"),
    ),
    (
        "bad onTaskFailure",
        job(onTaskFailure="retry"),
        "onTaskFailure",
        "not one of",
        job(onTaskFailure="performExitOptionsJobAction"),
    ),
    (
        "job wall clock not a duration",
        job(constraints={"maxWallClockTime": "tomorrow"}),
        "constraints.maxWallClockTime",
        "not an ISO 8601 duration",
        job(constraints={"maxWallClockTime": "PT24H"}),
    ),
    (
        "release task without preparation",
        job(jobReleaseTask={"commandLine": "true"}),
        "",
        "jobReleaseTask needs a jobPreparationTask",
        job(jobPreparationTask={"commandLine": "true"}, jobReleaseTask={"commandLine": "true"}),
    ),
    (
        "release task over 15 minutes",
        job(
            jobPreparationTask={"commandLine": "true"},
            jobReleaseTask={"commandLine": "true", "maxWallClockTime": "PT16M"},
        ),
        "jobReleaseTask",
        "over PT15M",
        job(
            jobPreparationTask={"commandLine": "true"},
            jobReleaseTask={"commandLine": "true", "maxWallClockTime": "PT15M"},
        ),
    ),
    ("job id bad", job(id="my job"), "id", "contains ' '", job(id="my-job")),
    ("unknown job field", job(poolId="p"), "poolId", "unknown field", job()),
]


@pytest.mark.parametrize(
    ("rule", "bad", "field", "fragment", "good"), JOB_RULES, ids=[r[0] for r in JOB_RULES]
)
def test_job_rule(
    rule: str, bad: dict[str, Any], field: str, fragment: str, good: dict[str, Any]
) -> None:
    found = errors_of(bad, JobSpec)
    assert field in found, f"{rule}: expected an error at {field!r}, got {found}"
    assert fragment in found[field]
    assert errors_of(good, JobSpec) == {}


def test_every_error_of_a_task_is_reported_at_once() -> None:
    found = errors_of(task(id="a b", requiredSlots=0, constraints={"maxTaskRetryCount": -5}))
    assert set(found) == {"id", "requiredSlots", "constraints.maxTaskRetryCount"}


def test_snake_case_attributes_and_camel_case_wire() -> None:
    spec = TaskSpec(id="t", command_line="echo", required_slots=2)
    assert spec.to_wire() == {"id": "t", "commandLine": "echo", "requiredSlots": 2}


def test_enum_spelling_is_kept_for_a_faithful_round_trip() -> None:
    spec = JobSpec.model_validate(job(onAllTasksComplete="terminateJob"))
    assert spec.to_wire()["onAllTasksComplete"] == "terminateJob"


def test_friendly_durations_export_as_iso() -> None:
    spec = TaskSpec.model_validate(task(constraints={"maxWallClockTime": "90m"}))
    assert spec.to_wire()["constraints"] == {"maxWallClockTime": "PT1H30M"}


def test_resource_file_in_python() -> None:
    resource = ResourceFile(storage_container_url="https://a/c?sig=x", blob_prefix="in/")
    assert resource.to_wire() == {"storageContainerUrl": "https://a/c?sig=x", "blobPrefix": "in/"}


def test_blob_prefix_is_for_containers_only() -> None:
    with pytest.raises(ValidationError, match="blobPrefix applies only"):
        ResourceFile(http_url="https://a/b", file_path="b", blob_prefix="x")


def test_integers_sent_as_strings_by_az_are_accepted() -> None:
    # `az batch` sends flags such as --priority as JSON strings.
    assert JobSpec.model_validate(job(priority="100")).priority == 100
