"""batchflow: jobs and task graphs for Azure Batch, as code, run here or on a pool.

```python
from batchflow import Job

job = Job("hello", on_all_tasks_complete="terminatejob")
job.task("greet", "/bin/bash -c 'echo Hello from Azure Batch'", wall_clock="5m")
```

Public names are loaded on first use, so `batchflow --help` starts without pydantic.
"""

from __future__ import annotations

import importlib

from batchflow._version import __version__

# Not `typing.TYPE_CHECKING`: importing typing (and re with it) here would widen the moment,
# before the CLI's own Ctrl-C handling starts, in which an interrupt prints a traceback.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from batchflow.dsl import Job, Task, TaskGroup
    from batchflow.exceptions import (
        BackendError,
        BatchflowError,
        CycleError,
        DuplicateTaskError,
        FlowError,
        FlowInvalid,
        FlowLoadError,
        InvalidFieldError,
        StateError,
        SubmitError,
        UnknownTaskError,
    )
    from batchflow.loader import Flow, load
    from batchflow.model import (
        EnvironmentSetting,
        ExitConditions,
        ExitOptions,
        JobSpec,
        OutputFile,
        ResourceFile,
        TaskSpec,
    )
    from batchflow.validation import Problem, validate

__all__ = [
    "BackendError",
    "BatchflowError",
    "CycleError",
    "DuplicateTaskError",
    "EnvironmentSetting",
    "ExitConditions",
    "ExitOptions",
    "Flow",
    "FlowError",
    "FlowInvalid",
    "FlowLoadError",
    "InvalidFieldError",
    "Job",
    "JobSpec",
    "OutputFile",
    "Problem",
    "ResourceFile",
    "StateError",
    "SubmitError",
    "Task",
    "TaskGroup",
    "TaskSpec",
    "UnknownTaskError",
    "__version__",
    "load",
    "validate",
]

_HOMES = {
    "batchflow.dsl": ("Job", "Task", "TaskGroup"),
    "batchflow.exceptions": (
        "BackendError",
        "BatchflowError",
        "CycleError",
        "DuplicateTaskError",
        "FlowError",
        "FlowInvalid",
        "FlowLoadError",
        "InvalidFieldError",
        "StateError",
        "SubmitError",
        "UnknownTaskError",
    ),
    "batchflow.loader": ("Flow", "load"),
    "batchflow.model": (
        "EnvironmentSetting",
        "ExitConditions",
        "ExitOptions",
        "JobSpec",
        "OutputFile",
        "ResourceFile",
        "TaskSpec",
    ),
    "batchflow.validation": ("Problem", "validate"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
