"""The DSL's local files: `inputs=` staged into a task's working directory, `outputs=`
collected into a results folder.

Neither is an Azure Batch field: on a pool, the Azure backend turns them into resource and
output files; the local engine moves them on this machine's disk.

- `inputs=` are paths relative to the flow file's folder (or absolute). Each lands in the
  working directory under its base name; a directory is copied recursively. Files are
  hard-linked when the disk allows it (free, whatever their size) and copied otherwise.
  A hard link shares the file with the original: a task that rewrites an input *in place*
  (`open(name, "w")`) changes the original too, so write results to new files (on Batch an
  input is always a copy). `link=False` forces copies.
- `outputs=` are `filePattern`-style globs (see `batchflow.storage.patterns`) relative to
  the working directory; matches are copied to the results folder at the same relative
  path (a match outside the working directory, like `../stdout.txt`, at its name).
- A task handed its parents' outputs (`inputs=[task]`) finds each parent's collected files
  at `<job id>/<parent id>/<path>` in its working directory, the layout a Batch node
  makes of a `blobPrefix` download from the outputs container (`stage_handoffs`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from batchflow.exceptions import InputNotFoundError, InvalidFieldError
from batchflow.storage.patterns import match_files

__all__ = ["check_inputs", "collect_outputs", "stage_handoffs", "stage_inputs"]


def check_inputs(
    inputs: Sequence[str],
    base_dir: Path,
    *,
    job_id: str | None = None,
    task_id: str | None = None,
) -> list[tuple[Path, str]]:
    """Each input as `(source path, name in the working directory)`, checked.

    Call it before anything runs: raises `InputNotFoundError` (a `FileNotFoundError`) naming
    the first missing input, and `InvalidFieldError` when two inputs would land under the
    same name or an input has no name (`/`).
    """
    staged: list[tuple[Path, str]] = []
    seen: dict[str, str] = {}
    for item in inputs:
        source = Path(os.path.abspath(base_dir / item))
        name = source.name
        if not name:
            raise InvalidFieldError(
                f"input '{item}' has no name to give it in the working directory",
                job_id=job_id,
                task_id=task_id,
                field="inputs",
            )
        if not source.exists():
            raise InputNotFoundError(
                f"input '{item}' does not exist (looked for {source})",
                path=str(source),
                job_id=job_id,
                task_id=task_id,
                field="inputs",
            )
        if name in seen:
            raise InvalidFieldError(
                f"inputs '{seen[name]}' and '{item}' would both be '{name}' in the working "
                "directory; rename one of them",
                job_id=job_id,
                task_id=task_id,
                field="inputs",
            )
        seen[name] = item
        staged.append((source, name))
    return staged


def stage_inputs(
    inputs: Sequence[str],
    base_dir: Path,
    working_dir: Path,
    *,
    link: bool = True,
    job_id: str | None = None,
    task_id: str | None = None,
) -> None:
    """Put each local input (relative to `base_dir`, the flow file's folder) into
    `working_dir` under its base name; a directory is copied recursively.

    Files are hard-linked when possible (`link=True`) and copied otherwise; an existing
    file of the same name is replaced. Raises `InputNotFoundError` naming a missing input.
    """
    if not inputs:
        return
    copy = _link_or_copy if link else _copy
    for source, name in check_inputs(inputs, base_dir, job_id=job_id, task_id=task_id):
        target = working_dir / name
        if source.is_dir():
            shutil.copytree(source, target, copy_function=copy, dirs_exist_ok=True)
        else:
            copy(str(source), str(target))


def _copy(source: str, target: str) -> str:
    if os.path.lexists(target):
        os.unlink(target)
    return shutil.copy2(source, target)


def _link_or_copy(source: str, target: str) -> str:
    """Hard-link `source` to `target`, or copy it where links are impossible (another
    file system, a file system without hard links)."""
    try:
        os.link(source, target)
    except FileExistsError:
        os.unlink(target)
        return _link_or_copy(source, target)
    except OSError:
        return _copy(source, target)
    return target


def collect_outputs(
    patterns: Sequence[str],
    working_dir: Path,
    results_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """Copy the files matching `patterns` (globs, the `filePattern` matcher) from
    `working_dir` into `results_dir`, keeping their paths relative to the working
    directory; return the copies' paths. A pattern that matches nothing is not an error.
    """
    copied: list[Path] = []
    done: set[Path] = set()
    for pattern in patterns:
        for path, name in match_files(pattern, working_dir, env):
            relative = os.path.relpath(os.path.normpath(path), os.path.normpath(working_dir))
            if relative == os.pardir or relative.startswith(os.pardir + os.sep):
                relative = name
            target = results_dir / relative
            if target in done:
                continue
            done.add(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(str(path), str(target))
            copied.append(target)
    return copied


def stage_handoffs(
    parents: Sequence[str],
    job_results: Path,
    working_dir: Path,
    *,
    job_id: str,
    link: bool = True,
) -> int:
    """Put the collected outputs of each parent task (`job_results/<parent>/...`, what
    `collect_outputs` made) into `working_dir/<job_id>/<parent>/...`; return the count.

    Files are hard-linked when possible (`link=True`) and copied otherwise. A parent that
    collected nothing is not an error (the task runs with what exists), as a Batch
    `blobPrefix` download of an empty prefix is none.
    """
    copy = _link_or_copy if link else _copy
    count = 0
    for parent in parents:
        source = job_results / parent
        if not source.is_dir():
            continue
        target = working_dir / job_id / parent
        for folder, _dirs, files in os.walk(source):
            into = target / os.path.relpath(folder, source)
            into.mkdir(parents=True, exist_ok=True)
            for name in files:
                copy(os.path.join(folder, name), str(into / name))
                count += 1
    return count
