"""Command lines are split like a POSIX shell would, but never expanded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchflow.backends.local.runner import exit_code_of, resolve_program, split_command


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("/bin/true", ["/bin/true"]),
        ("python3 process.py --input input.csv", ["python3", "process.py", "--input", "input.csv"]),
        # the tutorial's form: the quoted script is one argument
        ("/bin/bash -c 'echo $X && date'", ["/bin/bash", "-c", "echo $X && date"]),
        ('echo "a b" c\\ d', ["echo", "a b", "c d"]),
        # $VAR stays as written: there is no shell
        ("echo $HOME", ["echo", "$HOME"]),
    ],
)
def test_split_command(line: str, argv: list[str]) -> None:
    assert split_command(line) == argv


def test_unbalanced_quotes_are_an_error() -> None:
    with pytest.raises(ValueError):
        split_command("echo 'oops")


def test_resolve_program_searches_path_then_the_working_directory(tmp_path: Path) -> None:
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    path = os.defpath + os.pathsep + str(tmp_path)
    assert resolve_program("sh", path, str(tmp_path)) in ("/bin/sh", "/usr/bin/sh")
    assert resolve_program("tool.sh", path, str(tmp_path)) == str(script)
    assert resolve_program("no-such-tool", path, str(tmp_path)) is None
    assert resolve_program("./x", path, str(tmp_path)) == "./x"


def test_exit_code_of_a_killed_process_is_128_plus_the_signal() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.kill(os.getpid(), 9)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == 137
