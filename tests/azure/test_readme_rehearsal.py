"""The README's offline rehearsal of a stack ("Running on Azure Batch") runs as shown: its
flow, its commands, and the output it prints (the job id's date aside)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO


def readme_block(first_line: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(first_line)
    return text[start : text.index("```", start)]


def shown() -> list[tuple[str, list[str]]]:
    """The rehearsal's commands (without `$ `), each with the lines it is shown printing."""
    session: list[tuple[str, list[str]]] = []
    for line in readme_block("$ batchflow emulator --port 8443 --pool").splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        elif line.strip():
            session[-1][1].append(line)
    return session


def test_the_readme_rehearsal_runs_as_shown(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "nightly.py").write_text(readme_block("# flows/nightly.py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHFLOW_"))}
    env["PYTHONPATH"] = str(REPO)
    (emulator, _), *rest = shown()
    assert emulator.endswith(" &")
    args = shlex.split(emulator[: -len(" &")].replace("--port 8443", "--port 0"))
    assert args[0] == "batchflow"
    server = subprocess.Popen(
        [sys.executable, "-m", "batchflow", *args[1:]],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    today = time.strftime("%Y%m%d", time.gmtime())
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("batchflow emulator: http://127.0.0.1:")
        for command, lines in rest:
            words = shlex.split(command)
            if words[0] == "export":
                name, value = words[1].split("=", 1)
                env[name] = value
                continue
            assert words[0] == "batchflow", command
            words = [w.replace("20261203", today) for w in words]
            done = subprocess.run(
                [sys.executable, "-m", "batchflow", *words[1:]],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            printed = re.sub(r"\d{8}", "20261203", done.stdout).splitlines()
            assert printed == lines, command
    finally:
        server.terminate()
        server.communicate(timeout=30)
        from batchflow.backends.local.paths import StateDir
        from batchflow.emulator.server import stop_engine

        stop_engine(StateDir(tmp_path / ".batchflow"))
