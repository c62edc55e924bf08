"""A full disk under the state directory is one clear line and exit code 2.

The state directory lives on a real, tiny tmpfs, mounted in a private mount namespace
(`unshare`), so the test needs no privileges beyond user namespaces and leaves no mount.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.local.conftest import in_private_mounts

FLOW = """\
from batchflow import Job
job = Job("{job}", pool="p", on_all_tasks_complete="terminatejob")
job.map("t{{i}}", {command!r}, i=range({count}), wall_clock="1m")
"""


def run_on_tiny_disk(
    tmp_path: Path, size: str, flow: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`batchflow submit` with its state on a tmpfs of `size`, in a private mount namespace."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    (tmp_path / "flow.py").write_text(flow)
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {mount_point} && "
        f"exec {sys.executable} -m batchflow submit {tmp_path / 'flow.py'} "
        f"--state-dir {mount_point / 'state'} " + " ".join(args)
    )
    return in_private_mounts(script)


@pytest.mark.parametrize(
    ("size", "count", "command", "expected"),
    [
        # The task table itself does not fit: submit refuses before anything runs.
        (
            "300k",
            5000,
            "/bin/echo {i} and a long enough command line to fill it",
            "the disk is full",
        ),
        # It fits, but the tasks' output fills the disk while the job runs.
        ("2m", 40, "/bin/bash -c 'head -c 200000 /dev/zero'", "is full"),
    ],
    ids=["state-does-not-fit", "fills-while-running"],
)
def test_full_disk_is_one_line_and_exit_2(
    tmp_path: Path, size: str, count: int, command: str, expected: str
) -> None:
    flow = FLOW.format(job="full", command=command, count=count)
    result = run_on_tiny_disk(tmp_path, size, flow, "--slots", "2")
    assert result.returncode == 2, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: ") and expected in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
