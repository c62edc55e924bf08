"""Starting and stopping one attempt of a task: argv, environment, directories, processes.

`commandLine` is split with POSIX quoting and run without a shell, as Batch's Linux agent
does (no `$VAR` expansion: write `/bin/bash -c '...'` for that). Each attempt runs in its
own session (so its process group can be killed whole, and a Ctrl-C in the terminal that
started the engine never reaches it), with stdin from /dev/null and stdout/stderr in
`stdout.txt`/`stderr.txt` of the task directory.

Tasks without files to stage take the fast path: one `posix_spawn` of the program itself
(the engine is single-threaded, so it can `chdir` into the working directory first).
Tasks with resource files, output files, `inputs=` or `outputs=` start the staging wrapper
(`batchflow.backends.local.stage`, see `stage_argv`) in their place, which does the blocking
network and file work in the task's own process, never in the engine.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "exit_code_of",
    "kill_group",
    "resolve_program",
    "spawn",
    "split_command",
    "stage_argv",
]

_QUOTING = frozenset("'\"\\")
_OUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_found: dict[tuple[str, str], str] = {}


def split_command(command_line: str) -> list[str]:
    """argv of a command line: POSIX quoting, no expansion. ValueError on bad quoting."""
    if _QUOTING.isdisjoint(command_line):
        return command_line.split()
    return shlex.split(command_line, comments=False, posix=True)


def resolve_program(name: str, path: str, cwd: str) -> str | None:
    """The file `name` runs: as given if it has a '/', else the first match on `path`.

    Relative paths and PATH entries are taken from `cwd` (the task's working directory).
    Hits are cached per (name, PATH), because almost every task of a job runs the same
    program; a PATH entry that is the working directory itself is never cached.
    """
    if "/" in name:
        return name
    hit = _found.get((name, path))
    if hit is not None:
        return hit
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        full = candidate if os.path.isabs(candidate) else os.path.join(cwd, candidate)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            if os.path.isabs(folder) and folder != cwd:
                _found[(name, path)] = candidate
            return candidate
    return None


def spawn(
    program: str,
    argv: list[str],
    env: Mapping[str, str],
    cwd: str,
    task_dir: str,
) -> int:
    """Start one process in its own session; its pid (= its process group id).

    Raises OSError when the program cannot be started (no such file, not executable).
    """
    os.chdir(cwd)
    return os.posix_spawn(
        program,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, task_dir + "/stdout.txt", _OUT_FLAGS, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, task_dir + "/stderr.txt", _OUT_FLAGS, 0o644),
        ],
        setsid=True,
    )


#: The folder that holds the `batchflow` package the engine runs.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
_STAGE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from batchflow.backends.local.stage import main; sys.exit(main(sys.argv[2:]))"
)


def stage_argv(spec_path: Path) -> list[str]:
    """argv of the staging wrapper for a task whose spec is at `spec_path`.

    Isolated (`-I`: no PYTHONPATH or user site of the task's environment), and importing
    the engine's own copy of batchflow: a `-m` would import whichever one the interpreter's
    site-packages point at, another checkout's for an engine run from a source tree.
    """
    return [sys.executable, "-I", "-c", _STAGE, PACKAGE_ROOT, str(spec_path)]


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to a whole process group (a task and every process it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def exit_code_of(status: int) -> int:
    """The exit code a shell would report: the code, or 128 + signal for a killed process."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
