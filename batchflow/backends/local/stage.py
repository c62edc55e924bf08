"""The staging wrapper: runs one attempt of a task that has files to move.

`python -I -c ... SPEC` (`runner.stage_argv`) is started by the engine in place of the
task's command, in the task's session, working directory and environment, with stdout and
stderr already pointing at the task's log files. It

1. copies `inputs=` files and the collected outputs of the parents it is handed into the
   working directory and fetches `resourceFiles` (a failure here is Batch's
   pre-processing error: the command never runs);
2. runs the command (no shell) and waits for it;
3. uploads `outputFiles` according to their `uploadCondition` and collects `outputs=`
   into the results folder (a failure here is a file upload error; the exit code is kept).

It reports to the engine through a small JSON result file next to SPEC. The blocking
network work happens here, in the task's own process, so the engine never waits on it;
killing the task's process group (wall clock, terminate) stops the wrapper too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from batchflow.backends.local.outcome import launch_failure
from batchflow.backends.local.runner import exit_code_of, resolve_program, split_command
from batchflow.redact import redact

__all__ = ["main"]


def _write_result(path: str, result: dict[str, Any]) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as out:
        json.dump(result, out)
    os.replace(temporary, path)


def _staging_failure(exc: BaseException, default_code: str) -> dict[str, Any]:
    category = getattr(exc, "category", None) or "usererror"
    code = getattr(exc, "code", None) or default_code
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"category": category, "code": code, "message": redact(str(message))}


def _note(text: str) -> None:
    """A line in the task's stderr.txt (secrets removed)."""
    print(f"batchflow: {redact(text)}", file=sys.stderr, flush=True)


def _prepare(spec: dict[str, Any], wd: Path) -> dict[str, Any] | None:
    """Stage inputs and resource files; the failureInfo of a pre-processing error, or None."""
    if spec.get("handoffs"):
        from batchflow.storage import stage_handoffs

        try:
            # The results folder is the state directory's, shared by every node. Links: the
            # files are batchflow's copies, not the user's.
            stage_handoffs(spec["handoffs"], Path(spec["jobResultsDir"]), wd, job_id=spec["jobId"])
        except Exception as exc:
            _note(f"staging the outputs of {len(spec['handoffs']):,} parent task(s) failed: {exc}")
            return _staging_failure(exc, "ResourceFileCreateFailed")
    if spec["inputs"]:
        from batchflow.storage import stage_inputs

        try:
            # Copies, not links: a task that edits an input in place must not edit the user's file.
            stage_inputs(spec["inputs"], Path(spec["baseDir"] or "."), wd, link=False)
        except Exception as exc:
            _note(f"staging inputs failed: {exc}")
            return _staging_failure(exc, "ResourceFileCreateFailed")
    if spec["resourceFiles"]:
        from batchflow.exceptions import StagingError
        from batchflow.storage import AutoStorage, fetch_resource_files

        try:
            fetch_resource_files(
                spec["resourceFiles"], wd, auto_storage=AutoStorage.from_env(spec["storageEnv"])
            )
        except StagingError as exc:
            _note(f"fetching resource files failed: {exc.message}")
            return _staging_failure(exc, "BlobDownloadMiscError")
        except OSError as exc:
            _note(f"fetching resource files failed: {exc}")
            return _staging_failure(exc, "ResourceFileWriteFailed")
    return None


def _finish(spec: dict[str, Any], wd: Path, exit_code: int) -> dict[str, Any] | None:
    """Upload output files and collect outputs; the failureInfo of an upload error, or None."""
    if spec["outputFiles"]:
        from batchflow.exceptions import StagingError
        from batchflow.storage import AutoStorage, upload_output_files

        try:
            upload_output_files(
                spec["outputFiles"],
                wd.parent,
                exit_code=exit_code,
                env=dict(os.environ),
                auto_storage=AutoStorage.from_env(spec["storageEnv"]),
            )
        except StagingError as exc:
            _note(f"uploading output files failed: {exc.message}")
            return _staging_failure(exc, "FileUploadMiscError")
    if spec["outputs"]:
        from batchflow.storage import collect_outputs

        try:
            collect_outputs(spec["outputs"], wd, Path(spec["resultsDir"]))
        except Exception as exc:
            _note(f"collecting outputs failed: {exc}")
            return _staging_failure(exc, "FileUploadMiscError")
    return None


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Carry out one attempt; the result the engine reads."""
    wd = Path.cwd()
    failure = _prepare(spec, wd)
    if failure is not None:
        return {"phase": "preprocessing", "exitCode": None, "failure": failure}
    command = spec["commandLine"]
    try:
        argv = split_command(command)
    except ValueError as exc:
        argv = []
        reason = f"the command line cannot be split: {exc}"
    else:
        reason = "No such file or directory"
    program = (
        resolve_program(argv[0], os.environ.get("PATH", os.defpath), str(wd)) if argv else None
    )
    if program is None:
        name = argv[0] if argv else command
        _note(f"cannot run '{name}': {reason}")
        return {"phase": "launch", "exitCode": None, "failure": launch_failure(name, reason)}
    try:
        process = subprocess.Popen(argv, executable=program)
    except OSError as exc:
        _note(f"cannot run '{argv[0]}': {exc.strerror}")
        return {
            "phase": "launch",
            "exitCode": None,
            "failure": launch_failure(argv[0], exc.strerror or str(exc)),
        }
    _, status = os.waitpid(process.pid, 0)
    process.returncode = exit_code_of(status)
    code = process.returncode
    failure = _finish(spec, wd, code)
    return {"phase": "run", "exitCode": code, "failure": failure, "upload": failure is not None}


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m batchflow.backends.local.stage SPEC`."""
    args = sys.argv[1:] if argv is None else argv
    with open(args[0]) as source:
        spec = json.load(source)
    result = run(spec)
    _write_result(spec["result"], result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
