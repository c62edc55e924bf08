"""`make demo`/`make test` set-up: quiet on a machine with pyenv shims, no deprecated modes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_make_skips_a_python_shim_that_is_not_installed_without_a_word(tmp_path: Path) -> None:
    # A pyenv shim: on PATH, but it fails when run, as python3.13 does without 3.13 installed.
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3.13"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    python_dir = tmp_path / "python"
    python_dir.mkdir()
    (python_dir / "python3.11").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{shims}:{python_dir}:/usr/bin:/bin"}
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, project / name)
    result = subprocess.run(
        ["make", "-n", "demo"], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert "command not found" not in result.stderr, result.stderr
    assert "python3.11 -m venv .venv" in result.stdout
    assert "editable_mode=compat" not in result.stdout


def test_the_editable_install_is_a_plain_path_without_deprecation(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "batchflow", project / "batchflow")
    out = tmp_path / "wheel"
    out.mkdir()
    build = (
        "import sys, warnings; warnings.simplefilter('error');"
        "from setuptools import build_meta;"
        "print(build_meta.build_editable(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", build, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Deprecat" not in result.stderr
    wheel = out / result.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [pth] = [n for n in names if n.endswith(".pth")]
        # A plain path, not an import hook that every start would run.
        assert archive.read(pth).decode().strip() == str(project)
        assert not [n for n in names if "finder" in n]
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "batchflow = batchflow.cli:entry" in archive.read(entry_points).decode()
