"""Fixtures of the infrastructure tests: Pulumi mocks that never leak between tests.

Every test runs its program through `run_under_mocks`, which installs fresh mocks and
resets Pulumi's runtime afterwards; `pulumi_runtime_is_reset` checks that it did. No test
here needs the Pulumi CLI, the azure-native plugin or the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pulumi
import pytest

from batchflow.infra.config import StackConfig
from batchflow.infra.mocks import MockRun, run_under_mocks
from batchflow.infra.parse import parse_stack_config

RG = "rg-test"
LOCATION = "westeurope"
SUBSCRIPTION_PREFIX = "/subscriptions/00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True)
def pulumi_runtime_is_reset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Pulumi config from the shell gets in; no root stack or config leaks out."""
    for name in list(os.environ):
        if name.startswith("PULUMI_CONFIG"):
            monkeypatch.delenv(name)
    yield
    assert pulumi.runtime.get_root_resource() is None
    assert pulumi.Config("batchflow").get("pools") is None


def run(program: Callable[[], Mapping[str, Any] | None], stack: str = "test") -> MockRun:
    """`program` under fresh mocks: its resources and its returned outputs, resolved."""
    return run_under_mocks(program, stack=stack)


def config(stack: str = "test", **settings: Any) -> StackConfig:
    """A validated StackConfig from settings written as in a stack file."""
    return parse_stack_config(stack, settings)


def children_of(result: MockRun, component_type: str) -> list[Any]:
    """The resources whose parent is the (only) component of `component_type`."""
    parent = result.one(component_type)
    return [r for r in result.resources if r.parent == parent.urn]
