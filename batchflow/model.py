"""The flow model: Azure Batch jobs and tasks in the REST wire shape.

Attributes are snake_case, JSON keys are the camelCase names Batch uses
(`TaskSpec(command_line=...)` dumps as `{"commandLine": ...}`). Each model checks the
rules Batch enforces on its own fields (id characters, one resource-file source, a
relative `filePath`, ISO 8601 durations, value ranges, enum values); rules that span
several tasks or the job live in `batchflow.validation`. Unknown fields are rejected.

Values are kept as written where Batch accepts them (an enum in any case, a valid
ISO 8601 duration as spelled), so a JSON file loads and exports unchanged.

>>> TaskSpec.model_validate({"id": "t1", "commandLine": "/bin/true"}).command_line
'/bin/true'
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from batchflow import names, rules
from batchflow.durations import parse_duration, to_wire_duration

__all__ = [
    "AffinityInfo",
    "ApplicationPackageReference",
    "AutoUserSpecification",
    "ContainerHostBindMount",
    "ContainerRegistry",
    "EnvironmentSetting",
    "ExitCodeMapping",
    "ExitCodeRangeMapping",
    "ExitConditions",
    "ExitOptions",
    "IdentityReference",
    "JobConstraints",
    "JobManagerTask",
    "JobPreparationTask",
    "JobReleaseTask",
    "JobSpec",
    "MetadataItem",
    "MultiInstanceSettings",
    "OutputFile",
    "OutputFileBlobContainerDestination",
    "OutputFileDestination",
    "OutputFileUploadConfig",
    "PoolInfo",
    "ResourceFile",
    "TaskConstraints",
    "TaskContainerSettings",
    "TaskDependencies",
    "TaskIdRange",
    "TaskSpec",
    "UserIdentity",
    "check_id",
    "check_relative_path",
]

_ID = names.ID
check_id = names.check_id


def check_relative_path(value: str) -> str:
    """A path that must stay inside the task's working directory."""
    problem = names.path_problem(value)
    if problem == "is empty":
        raise ValueError("the path must not be empty")
    if problem == "is not a relative path":
        raise ValueError(f"'{value}' is absolute; give a path relative to the working directory")
    if problem:
        raise ValueError(f"'{value}' escapes the working directory with '..'")
    return value


def _enum(*allowed: str) -> AfterValidator:
    """Accept `allowed` in any case, as Batch does, and keep the spelling given."""
    lower = {a.lower() for a in allowed}

    def check(value: str) -> str:
        if value.lower() not in lower:
            raise ValueError(f"'{value}' is not one of {', '.join(allowed)}")
        return value

    return AfterValidator(check)


#: Validation context of JSON files (Batch's wire format): durations must be ISO 8601.
WIRE = {"wire": True}


def _duration(value: Any, info: ValidationInfo) -> Any:
    if info.context and info.context.get("wire"):
        # In a JSON file, as on Batch's REST API, only ISO 8601; `1h` is the DSL's convenience.
        wire = to_wire_duration(value) if isinstance(value, str) else None
        if wire is not None and wire != value:
            raise ValueError(
                f"'{value}' is not an ISO 8601 duration, which Batch requires in JSON "
                f"(did you mean '{wire}'?)"
            )
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 duration string, e.g. 'PT1H'")
    if isinstance(value, str | timedelta | int | float) and not isinstance(value, bool):
        return to_wire_duration(value)
    return value


Id = Annotated[str, AfterValidator(check_id)]
RelativePath = Annotated[str, AfterValidator(check_relative_path)]
#: An ISO 8601 duration on the wire; accepts `1h`, `90m`, `timedelta` and seconds too.
Duration = Annotated[str, BeforeValidator(_duration)]
Priority = Annotated[int, Field(ge=rules.PRIORITY_MIN, le=rules.PRIORITY_MAX)]
RetryCount = Annotated[int, Field(ge=rules.RETRY_COUNT_MIN)]
Slots = Annotated[int, Field(ge=1)]


MaxParallel = Annotated[int, AfterValidator(rules.check_parallel)]
JobAction = Annotated[str, _enum("none", "disable", "terminate")]
DependencyAction = Annotated[str, _enum("satisfy", "block")]
UploadCondition = Annotated[str, _enum("taskSuccess", "taskFailure", "taskCompletion")]
OnAllTasksComplete = Annotated[str, _enum(*rules.ON_ALL_TASKS_COMPLETE)]
OnTaskFailure = Annotated[str, _enum(*rules.ON_TASK_FAILURE)]
AutoUserScope = Annotated[str, _enum("task", "pool")]
ElevationLevel = Annotated[str, _enum("nonAdmin", "admin")]
WorkingDirectory = Annotated[str, _enum("taskWorkingDirectory", "containerImageDefault")]


class WireModel(BaseModel):
    """Base of every model: camelCase on the wire, snake_case in Python, no unknown keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object Batch takes: camelCase keys, only the fields that were set."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)


class NameValue(WireModel):
    name: str = Field(min_length=1)
    value: str | None = None


class EnvironmentSetting(NameValue):
    """An environment variable for a task (`{"name", "value"}`)."""


class MetadataItem(NameValue):
    """A name/value pair Batch stores on a job without interpreting it."""


class IdentityReference(WireModel):
    """A user-assigned managed identity, by its ARM resource id."""

    resource_id: str | None = None


class ResourceFile(WireModel):
    """A file downloaded into the task's working directory before the command runs.

    Exactly one of `http_url`, `storage_container_url` and `auto_storage_container_name`.
    """

    auto_storage_container_name: str | None = None
    storage_container_url: str | None = None
    http_url: str | None = None
    blob_prefix: str | None = None
    file_path: RelativePath | None = None
    file_mode: str | None = None
    identity_reference: IdentityReference | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ResourceFile:
        sources = [
            name
            for name, value in (
                ("httpUrl", self.http_url),
                ("storageContainerUrl", self.storage_container_url),
                ("autoStorageContainerName", self.auto_storage_container_name),
            )
            if value is not None
        ]
        if len(sources) != 1:
            got = f"got {', '.join(sources)}" if sources else "got none"
            raise ValueError(
                "give exactly one of httpUrl, storageContainerUrl, autoStorageContainerName "
                f"({got})"
            )
        if self.http_url is not None and not self.file_path:
            raise ValueError("filePath is required with httpUrl (the file's name in the task)")
        if self.blob_prefix is not None and self.http_url is not None:
            raise ValueError("blobPrefix applies only to storageContainerUrl or a container name")
        if self.file_mode is not None and not re.fullmatch(r"0?[0-7]{3,4}", self.file_mode):
            raise ValueError(f"fileMode '{self.file_mode}' is not an octal mode like '0755'")
        return self


class UploadHeader(NameValue):
    """An HTTP header to set on an uploaded blob."""


class OutputFileBlobContainerDestination(WireModel):
    """Where in a blob container an output file goes; `path` is a blob name or prefix."""

    path: str | None = None
    container_url: str
    identity_reference: IdentityReference | None = None
    upload_headers: list[UploadHeader] | None = None


class OutputFileDestination(WireModel):
    """The destination of an output file (only blob containers exist)."""

    container: OutputFileBlobContainerDestination


class OutputFileUploadConfig(WireModel):
    """When to upload: taskSuccess, taskFailure or taskCompletion."""

    upload_condition: UploadCondition


class OutputFile(WireModel):
    """Files matching `file_pattern` (relative to the working dir) uploaded after the task."""

    file_pattern: str = Field(min_length=1)
    destination: OutputFileDestination
    upload_options: OutputFileUploadConfig


class TaskConstraints(WireModel):
    """Wall clock, retention and retries of one task."""

    max_wall_clock_time: Duration | None = None
    retention_time: Duration | None = None
    max_task_retry_count: RetryCount | None = None


class JobConstraints(WireModel):
    """Wall clock of the whole job (from its creation) and its tasks' default retries."""

    max_wall_clock_time: Duration | None = None
    max_task_retry_count: RetryCount | None = None


Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class TaskIdRange(WireModel):
    """Tasks whose ids are the integers `start`..`end`, inclusive."""

    start: Int32
    end: Int32

    @model_validator(mode="after")
    def _ordered(self) -> TaskIdRange:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class TaskDependencies(WireModel):
    """The tasks that must complete before this one runs."""

    task_ids: list[str] | None = None
    task_id_ranges: list[TaskIdRange] | None = None


class ExitOptions(WireModel):
    """What a task's completion does to its job and to its dependents."""

    job_action: JobAction | None = None
    dependency_action: DependencyAction | None = None


class ExitCodeMapping(WireModel):
    """Exit options for one exit code."""

    code: int
    exit_options: ExitOptions


class ExitCodeRangeMapping(WireModel):
    """Exit options for an inclusive range of exit codes."""

    start: int
    end: int
    exit_options: ExitOptions

    @model_validator(mode="after")
    def _ordered(self) -> ExitCodeRangeMapping:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class ExitConditions(WireModel):
    """How Batch reacts to a task's exit code, a pre-processing or a file-upload error."""

    exit_codes: list[ExitCodeMapping] | None = None
    exit_code_ranges: list[ExitCodeRangeMapping] | None = None
    pre_processing_error: ExitOptions | None = None
    file_upload_error: ExitOptions | None = None
    default: ExitOptions | None = None


class AutoUserSpecification(WireModel):
    """The auto-user a task runs as: scope task or pool, nonAdmin or admin."""

    scope: AutoUserScope | None = None
    elevation_level: ElevationLevel | None = None


class UserIdentity(WireModel):
    """Either a named user of the pool or an auto-user, not both."""

    username: str | None = None
    auto_user: AutoUserSpecification | None = None

    @model_validator(mode="after")
    def _one(self) -> UserIdentity:
        if self.username is not None and self.auto_user is not None:
            raise ValueError("give username or autoUser, not both")
        return self


class ContainerRegistry(WireModel):
    """A private container registry (credentials or a managed identity)."""

    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    registry_server: str | None = None
    identity_reference: IdentityReference | None = None


class ContainerHostBindMount(WireModel):
    """A Batch directory mounted into a task container."""

    source: str | None = None
    is_read_only: bool | None = None


class TaskContainerSettings(WireModel):
    """Run the task inside a container (the pool needs a container configuration)."""

    container_run_options: str | None = None
    image_name: str = Field(min_length=1)
    registry: ContainerRegistry | None = None
    working_directory: WorkingDirectory | None = None
    container_host_batch_bind_mounts: list[ContainerHostBindMount] | None = None


class MultiInstanceSettings(WireModel):
    """MPI-style tasks (modelled; the local engine runs them as one instance)."""

    number_of_instances: Annotated[int, Field(ge=1)] | None = None
    coordination_command_line: str = Field(min_length=1)
    common_resource_files: list[ResourceFile] | None = None


class AffinityInfo(WireModel):
    """A hint to run the task on a given node."""

    affinity_id: str


class ApplicationPackageReference(WireModel):
    """An application package to install before the task runs."""

    application_id: str
    version: str | None = None


class _TaskBase(WireModel):
    command_line: str = Field(min_length=1)
    container_settings: TaskContainerSettings | None = None
    resource_files: list[ResourceFile] | None = None
    environment_settings: list[EnvironmentSetting] | None = None
    user_identity: UserIdentity | None = None


class TaskSpec(_TaskBase):
    """A task as `az batch task create --json-file` and the Add Task API take it."""

    id: Id
    display_name: Annotated[str, Field(max_length=rules.DISPLAY_NAME_MAX)] | None = None
    exit_conditions: ExitConditions | None = None
    output_files: list[OutputFile] | None = None
    affinity_info: AffinityInfo | None = None
    constraints: TaskConstraints | None = None
    required_slots: Slots | None = None
    multi_instance_settings: MultiInstanceSettings | None = None
    depends_on: TaskDependencies | None = None
    application_package_references: list[ApplicationPackageReference] | None = None


class JobManagerTask(_TaskBase):
    """A task started with the job that can drive it; ends the job when done by default."""

    id: Id
    display_name: Annotated[str, Field(max_length=rules.DISPLAY_NAME_MAX)] | None = None
    output_files: list[OutputFile] | None = None
    constraints: TaskConstraints | None = None
    required_slots: Slots | None = None
    kill_job_on_completion: bool | None = None
    run_exclusive: bool | None = None
    application_package_references: list[ApplicationPackageReference] | None = None
    allow_low_priority_node: bool | None = None


class JobPreparationTask(_TaskBase):
    """Runs once on each node before the job's first task there."""

    id: Id | None = None
    constraints: TaskConstraints | None = None
    wait_for_success: bool | None = None
    rerun_on_node_reboot_after_success: bool | None = None


_RELEASE_LIMIT = timedelta(minutes=15)


class JobReleaseTask(_TaskBase):
    """Runs once on each node that ran the job's preparation task, when the job ends."""

    id: Id | None = None
    max_wall_clock_time: Duration | None = None
    retention_time: Duration | None = None

    @model_validator(mode="after")
    def _short(self) -> JobReleaseTask:
        if self.max_wall_clock_time and parse_duration(self.max_wall_clock_time) > _RELEASE_LIMIT:
            raise ValueError(
                f"maxWallClockTime '{self.max_wall_clock_time}' is over PT15M, "
                "the most Batch allows for a job release task"
            )
        return self


class PoolInfo(WireModel):
    """The pool a job runs on: an existing pool id (auto pools are passed through)."""

    pool_id: str | None = None
    auto_pool_specification: dict[str, Any] | None = None


class JobSpec(WireModel):
    """A job as `az batch job create --json-file` and the Add Job API take it.

    `tasks` is batchflow's extension: a job document with its tasks in one file.
    """

    id: Id
    display_name: Annotated[str, Field(max_length=rules.DISPLAY_NAME_MAX)] | None = None
    uses_task_dependencies: bool | None = None
    priority: Priority | None = None
    allow_task_preemption: bool | None = None
    max_parallel_tasks: MaxParallel | None = None
    constraints: JobConstraints | None = None
    job_manager_task: JobManagerTask | None = None
    job_preparation_task: JobPreparationTask | None = None
    job_release_task: JobReleaseTask | None = None
    common_environment_settings: list[EnvironmentSetting] | None = None
    pool_info: PoolInfo | None = None
    on_all_tasks_complete: OnAllTasksComplete | None = None
    on_task_failure: OnTaskFailure | None = None
    network_configuration: dict[str, Any] | None = None
    metadata: list[MetadataItem] | None = None
    tasks: list[TaskSpec] | None = None

    @model_validator(mode="after")
    def _job_rules(self) -> JobSpec:
        if self.job_release_task is not None and self.job_preparation_task is None:
            raise ValueError("jobReleaseTask needs a jobPreparationTask")
        return self
