"""`node_setup`: apt calls that wait for the dpkg lock, blob mounts every user can read."""

from __future__ import annotations

import pytest

from batchflow.infra.node_setup import apt_waits_for_lock, uses_apt, with_allow_other

WAIT = "-o DPkg::Lock::Timeout=600"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # each apt-get call waits
        (
            "apt-get update && apt-get install -y x",
            f"apt-get {WAIT} update && apt-get {WAIT} install -y x",
        ),
        # apt too, and a full path
        ("/usr/bin/apt install -y x", f"/usr/bin/apt {WAIT} install -y x"),
        # inside bash -c '...'
        (
            "/bin/bash -c 'sudo apt-get -y install x'",
            f"/bin/bash -c 'sudo apt-get {WAIT} -y install x'",
        ),
        # apt-cache, aptitude and paths containing apt are not apt calls
        (
            "apt-cache policy x; aptitude; /opt/apt/run",
            "apt-cache policy x; aptitude; /opt/apt/run",
        ),
        # a command that already waits is left alone
        ("apt-get -o DPkg::Lock::Timeout=60 update", "apt-get -o DPkg::Lock::Timeout=60 update"),
    ],
)
def test_apt_calls_wait_for_the_dpkg_lock(command: str, expected: str) -> None:
    assert apt_waits_for_lock(command) == expected


@pytest.mark.parametrize(
    ("command", "uses"),
    [
        ("apt-get update", True),
        ("x; apt install y", True),
        ("apt-cache show x", False),
        ("echo", False),
    ],
)
def test_uses_apt(command: str, uses: bool) -> None:
    assert uses_apt(command) is uses


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, "-o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120 -o allow_other"),
        ("  ", "-o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120 -o allow_other"),
        ("-o ro", "-o ro -o allow_other"),
        ("-o allow_other", "-o allow_other"),
        ("-o ro,allow_other", "-o ro,allow_other"),
    ],
)
def test_mounts_allow_other_users(options: str | None, expected: str) -> None:
    assert with_allow_other(options) == expected
