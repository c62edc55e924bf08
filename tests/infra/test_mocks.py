"""The mock harness itself: what it records, and that unknown values fail instead of hiding."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import pulumi
import pytest
from pulumi_azure_native import resources

from batchflow.infra.mocks import UnknownOutputError, run_under_mocks


def unknown_output() -> pulumi.Output[str]:
    """An output whose value Pulumi does not know (what a preview has for computed ids)."""
    loop = asyncio.get_event_loop()
    value: asyncio.Future[Any] = loop.create_future()
    value.set_result(None)
    known: asyncio.Future[bool] = loop.create_future()
    known.set_result(False)
    return pulumi.Output(set(), value, known)


def test_an_unknown_output_fails_the_run() -> None:
    with pytest.raises(UnknownOutputError, match="'endpoint'"):
        run_under_mocks(lambda: {"endpoint": unknown_output()}, stack="t")


def test_an_unknown_input_fails_the_run() -> None:
    def program() -> None:
        resources.ResourceGroup("rg", location=unknown_output())

    with pytest.raises(UnknownOutputError, match="ResourceGroup::rg"):
        run_under_mocks(program, stack="t")


def test_records_inputs_state_and_resolves_outputs() -> None:
    def program() -> dict[str, Any]:
        group = resources.ResourceGroup("rg", location="northeurope", tags={"a": "b"})
        pulumi.export("exported", group.name)
        return {"id": group.id}

    result = run_under_mocks(program, stack="t")
    group = result.one("azure-native:resources:ResourceGroup")
    assert group.inputs == {"location": "northeurope", "tags": {"a": "b"}}
    assert group.state["name"].startswith("rg") and len(group.state["name"]) == 10
    assert result.outputs["exported"] == group.state["name"]
    assert result.outputs["id"] == group.state["id"]
    assert group.state["id"].endswith(f"/resourceGroups/{group.state['name']}")


def test_runs_do_not_leak_into_each_other() -> None:
    first = run_under_mocks(lambda: {"x": resources.ResourceGroup("a").name}, stack="one")
    second = run_under_mocks(lambda: None, stack="two", config={"batchflow:location": "x"})
    assert len(first.resources) == 1 and second.resources == []
    assert first.resources[0].urn.startswith("urn:pulumi:one::batchflow::")


def test_config_and_parse_modules_do_not_import_pulumi() -> None:
    code = (
        "import sys, batchflow.infra.parse, batchflow.infra.config; "
        "print(any(m.split('.')[0] == 'pulumi' for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_infra_help_does_not_import_pulumi() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from batchflow.cli.main import app; "
        "r = CliRunner().invoke(app, ['infra', 'plan', '--help']); "
        "print(r.exit_code, any(m.split('.')[0] == 'pulumi' for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0 False"


def test_what_the_program_logs_is_recorded_not_printed(caplog: pytest.LogCaptureFixture) -> None:
    # `batchflow infra plan` prints each warning once itself; the mocks must not print it again.
    caplog.set_level(logging.INFO)

    def program() -> None:
        pulumi.log.warn("two blob mounts")
        pulumi.log.info("hello")

    result = run_under_mocks(program, stack="t")
    assert result.log == (("warning", "two blob mounts"), ("info", "hello"))
    assert caplog.records == []
