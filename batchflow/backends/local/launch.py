"""Everything one attempt of a task needs before its process starts.

The environment is built in Batch's order (docs/semantics.md 2.1, 3.2), lowest
precedence first: the engine's own environment, the `AZ_BATCH_*` variables of the node,
job and task (with HOME and PWD set to the working directory and the shared and working
directories appended to PATH, as on a Linux node), the job's `commonEnvironmentSettings`,
the task's `environmentSettings`. The per-node part is computed once per job and node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchflow.backends.local.jobrun import JobRun
from batchflow.backends.local.paths import StateDir
from batchflow.envvars import STORAGE_CONNECTION_VARIABLES

__all__ = [
    "BASE_ENVIRONMENT",
    "FILE_FIELDS",
    "Attempt",
    "base_environment",
    "node_env",
    "task_env",
    "write_stage_spec",
]

#: Variables of the process that creates a job which its tasks get (then AZ_BATCH_* and
#: the job's and task's settings): what a program needs to start, nothing of anyone's
#: shell, so a job's tasks see the same environment whoever started the engine.
BASE_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")
#: Task fields that need the staging wrapper.
FILE_FIELDS = ("resourceFiles", "outputFiles", "$inputs", "$outputs", "$handoffs")


def base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The documented base environment of tasks, taken from `environ` (this process's)."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k in BASE_ENVIRONMENT or k.startswith("LC_")}


class Attempt:
    """A started attempt of a task (or of a job preparation/release task)."""

    __slots__ = (
        "conditions",
        "idx",
        "job",
        "kill_reason",
        "kind",
        "max_retries",
        "node",
        "pid",
        "retention",
        "retries",
        "slots",
        "spec_path",
        "start",
        "task_id",
        "wall_clock",
    )

    def __init__(
        self,
        job: JobRun,
        idx: int,
        task_id: str,
        node: str,
        slots: int,
        pid: int,
        start: float,
        conditions: dict[str, Any] | None,
        max_retries: int,
        retries: int,
        wall_clock: str | None,
        *,
        kind: str = "task",
    ) -> None:
        self.job = job
        self.idx = idx
        self.task_id = task_id
        self.node = node
        self.slots = slots
        self.pid = pid
        self.start = start
        self.conditions = conditions
        self.max_retries = max_retries
        self.retries = retries
        self.wall_clock = wall_clock
        #: 'task', 'manager', 'preparation' or 'release'.
        self.kind = kind
        #: Path of the staging wrapper's spec, when the task has files.
        self.spec_path: Path | None = None
        #: Why the engine killed it: 'timeout', 'terminate', 'requeue', 'delete',
        #: 'delete-task'.
        self.kill_reason: str | None = None
        #: Seconds its directory is kept after it completes (retentionTime).
        self.retention = 7 * 86400.0


def node_env(
    base: Mapping[str, str], state: StateDir, job: JobRun, node: str, account_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(environment before the task's own variables, the job's common settings)."""
    cached = job.env_cache.get(node)
    if cached is not None:
        return cached
    root = state.node_root(node)
    env = dict(base if job.env is None else job.env)
    env.update(
        {
            "AZ_BATCH_ACCOUNT_NAME": "local",
            "AZ_BATCH_ACCOUNT_URL": account_url,
            "AZ_BATCH_POOL_ID": job.pool_id,
            "AZ_BATCH_NODE_ID": node,
            "AZ_BATCH_NODE_IS_DEDICATED": "true",
            "AZ_BATCH_JOB_ID": job.id,
            "AZ_BATCH_NODE_ROOT_DIR": str(root),
            "AZ_BATCH_NODE_SHARED_DIR": str(root / "shared"),
            "AZ_BATCH_NODE_STARTUP_DIR": str(root / "startup"),
            "AZ_BATCH_NODE_MOUNTS_DIR": str(root / "fsmounts"),
            "AZ_BATCH_TASK_USER_IDENTITY": "PoolNonAdmin",
        }
    )
    if job.prep is not None:
        prep_dir = state.task_dir(node, job.id, job.prep.get("id") or "jobpreparation")
        env["AZ_BATCH_JOB_PREP_DIR"] = str(prep_dir)
        env["AZ_BATCH_JOB_PREP_WORKING_DIR"] = str(prep_dir / "wd")
    env["PATH"] = env.get("PATH", os.defpath) + os.pathsep + str(root / "shared")
    result = (env, job.common_env)
    job.env_cache[node] = result
    return result


def task_env(
    before: Mapping[str, str],
    common: Mapping[str, str],
    task_id: str,
    task_dir: str,
    settings: list[dict[str, Any]] | None,
) -> dict[str, str]:
    """The full environment of one task attempt."""
    env = dict(before)
    wd = task_dir + "/wd"
    env["AZ_BATCH_TASK_ID"] = task_id
    env["AZ_BATCH_TASK_DIR"] = task_dir
    env["AZ_BATCH_TASK_WORKING_DIR"] = wd
    env["HOME"] = wd
    env["PWD"] = wd
    env["PATH"] = env["PATH"] + os.pathsep + wd
    if common:
        env.update(common)
    if settings:
        for item in settings:
            env[item["name"]] = item.get("value") or ""
    return env


def write_stage_spec(
    state: StateDir,
    name: str,
    definition: Mapping[str, Any],
    *,
    base_dir: str | None,
    results_dir: Path,
    job_id: str,
) -> Path:
    """Write the staging wrapper's instructions (mode 0600: they may hold SAS URLs)."""
    state.staging.mkdir(exist_ok=True)
    path = state.staging / f"{name}.json"
    spec = {
        "commandLine": definition["commandLine"],
        "resourceFiles": definition.get("resourceFiles") or [],
        "outputFiles": definition.get("outputFiles") or [],
        "inputs": definition.get("$inputs") or [],
        "outputs": definition.get("$outputs") or [],
        "baseDir": base_dir,
        "resultsDir": str(results_dir),
        # The parents whose collected outputs (in the job's results folder) it is handed.
        "handoffs": definition.get("$handoffs") or [],
        "jobId": job_id,
        "jobResultsDir": str(results_dir.parent),
        "result": str(path.with_suffix(".result")),
        # The auto-storage account, from the engine's environment: given to the wrapper
        # only, never to the task's own environment.
        "storageEnv": {k: os.environ[k] for k in STORAGE_CONNECTION_VARIABLES if k in os.environ},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(spec, out)
    return path
