"""What `__main__.py` runs: the stack's settings, read from Pulumi and validated.

Pulumi hands a program its stack's config (the stack file over `Pulumi.yaml`'s defaults)
as strings, JSON for maps and lists. `read_stack_config` collects every `batchflow:` key,
so an unknown one is reported, and validates them before any resource is declared.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

from batchflow.infra.config import PROJECT, SETTINGS, StackConfig
from batchflow.infra.parse import parse_stack_config

__all__ = ["read_stack_config"]


def read_stack_config() -> StackConfig:
    """The current stack's `StackConfig`; raises `StackConfigError` naming key and fix."""
    raw: dict[str, Any] = {}
    config = pulumi.Config(PROJECT)
    for setting in SETTINGS:
        value = config.get(setting.key)
        if value is not None:
            raw[setting.key] = value
    # Keys the schema does not know are listed too, so a typo is an error, not a no-op.
    prefix = f"{PROJECT}:"
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    for key, value in everything.items():
        short = key.removeprefix(prefix)
        if key.startswith(prefix) and short not in raw:
            raw[short] = value
    return parse_stack_config(pulumi.get_stack(), raw)
