"""What a fresh Ubuntu node needs from a pool's start task and blob mounts to work the first time.

- **Blob mounts.** Batch mounts blobfuse as root when the node joins the pool; a task runs as
  a non-admin auto user by default and cannot read such a mount unless it carries
  `-o allow_other` (Microsoft's "Mount a virtual file system on a Batch pool"). Every mount
  gets it; a mount without options gets the caching options Microsoft's Batch examples use.
- **apt in a start task.** On a fresh node, unattended-upgrades holds the dpkg lock for
  minutes after boot; an `apt-get` that does not wait fails, and with `waitForSuccess` the node
  sits in `startTaskFailed` (billed, counted by autoscale, running nothing). Each `apt-get` or
  `apt` call gets `-o DPkg::Lock::Timeout=...` (apt waits for the lock instead of failing), and
  the start task's environment makes apt, debconf and needrestart ask no questions. `apt-get
  update` also takes apt's lists lock, which no option makes apt wait for: a command line
  retries it in a loop (the prod stack shows how); rewriting shell syntax here would not be safe.

This module imports only the standard library: `batchflow infra plan` shows the result.

>>> with_allow_other("-o attr_timeout=240")
'-o attr_timeout=240 -o allow_other'
>>> apt_waits_for_lock("/bin/bash -c 'apt-get install -y ffmpeg'")
"/bin/bash -c 'apt-get -o DPkg::Lock::Timeout=600 install -y ffmpeg'"
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "APT_ENVIRONMENT",
    "APT_LOCK_TIMEOUT_SECONDS",
    "DEFAULT_BLOBFUSE_OPTIONS",
    "apt_waits_for_lock",
    "uses_apt",
    "with_allow_other",
    "with_apt_environment",
]

#: How long apt waits for the dpkg lock: unattended-upgrades on a fresh node can hold it
#: for several minutes; ten is ample, and still fails a node whose apt is truly stuck.
APT_LOCK_TIMEOUT_SECONDS = 600

#: The environment of a start task that runs apt: no debconf prompt, no needrestart prompt.
APT_ENVIRONMENT: Mapping[str, str] = {
    "DEBIAN_FRONTEND": "noninteractive",
    "NEEDRESTART_MODE": "a",
}

#: Microsoft's Batch examples mount blob containers with these; `allow_other` lets non-admin
#: tasks read a mount that root made.
DEFAULT_BLOBFUSE_OPTIONS = "-o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120"

# `apt` or `apt-get` as a command word (optionally /usr/bin/...), followed by whitespace:
# not `apt-cache`, `aptitude`, `/opt/apt/x` or `myapt`.
_APT = re.compile(r"(?<![\w./-])((?:/usr/bin/)?apt(?:-get)?)(?=\s)")
_ALLOW_OTHER = re.compile(r"(?:^|[\s,])allow_other(?:$|[\s,=])")


def with_allow_other(options: str | None) -> str:
    """Blobfuse options that let every user of the node read the mount.

    None or empty gives Microsoft's default caching options plus `-o allow_other`; options
    that already allow other users are returned as they are.
    """
    text = (options or "").strip() or DEFAULT_BLOBFUSE_OPTIONS
    if _ALLOW_OTHER.search(text):
        return text
    return f"{text} -o allow_other"


def uses_apt(command_line: str) -> bool:
    """Whether a command line calls `apt` or `apt-get`."""
    return _APT.search(command_line) is not None


def apt_waits_for_lock(command_line: str) -> str:
    """`command_line` with each apt call waiting for the dpkg lock (kept if it already waits)."""
    if "Lock::Timeout" in command_line:
        return command_line
    return _APT.sub(rf"\1 -o DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECONDS}", command_line)


def with_apt_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The start task's environment plus `APT_ENVIRONMENT`; values the stack set win."""
    return {**APT_ENVIRONMENT, **environment}
