"""Where a command runs: `batchflow.stack.resolve_target` and the stack-output contract."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from batchflow.stack import STACK_OUTPUTS, TargetError, resolve_target

OUTPUTS = {
    "batchAccountName": "bfdev",
    "batchAccountEndpoint": "https://bfdev.westeurope.batch.azure.com",
    "poolIds": {"render": "render-pool", "etl": "etl-pool"},
    "storageAccountName": "bfdevst",
    "storageBlobEndpoint": "https://bfdevst.blob.core.windows.net/",
    "containers": {"inputs": "inputs", "outputs": "outputs", "logs": "logs"},
    "nodeIdentityResourceId": "/subscriptions/s/resourceGroups/g/providers/x/nodes",
    "resourceGroupName": "bfdev-rg",
}
KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHM="


def test_the_outputs_the_program_exports_are_the_ones_the_cli_reads() -> None:
    assert set(OUTPUTS) == set(STACK_OUTPUTS)


def test_no_target_is_the_local_engine() -> None:
    assert resolve_target(environ={}) is None


def test_the_az_batch_variables(tmp_path: Path) -> None:
    target = resolve_target(
        environ={
            "AZURE_BATCH_ENDPOINT": "bfdev.westeurope.batch.azure.com/",
            "AZURE_BATCH_ACCOUNT": "bfdev",
            "AZURE_BATCH_ACCESS_KEY": KEY,
        }
    )
    assert target is not None
    assert target.endpoint == "https://bfdev.westeurope.batch.azure.com"
    assert (target.account_name, target.account_key) == ("bfdev", KEY)
    assert KEY not in repr(target)
    # The account name defaults to the endpoint's first label, as az's does.
    named = resolve_target(environ={"AZURE_BATCH_ENDPOINT": "https://acct.region.batch.azure.com"})
    assert named is not None and named.account_name == "acct" and named.account_key is None


def test_an_outputs_file_wins_over_the_variables(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    target = resolve_target(
        stack_outputs=path,
        environ={
            "AZURE_BATCH_ENDPOINT": "https://other.x.batch.azure.com",
            "AZURE_BATCH_ACCESS_KEY": KEY,
        },
    )
    assert target is not None
    assert target.endpoint == OUTPUTS["batchAccountEndpoint"]
    assert target.account_key == KEY  # a key given applies to the stack's account
    assert target.blob_endpoint == "https://bfdevst.blob.core.windows.net"
    assert target.pool_id("render") == "render-pool"
    assert target.pool_id("some-pool-id") == "some-pool-id"
    assert target.pool_id(None) is None  # two pools: the flow must say which
    assert target.describe() == "batch account 'bfdev' (outputs.json)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"batchAccountName": "x"}), "no 'batchAccountEndpoint' output"),
        (json.dumps({**OUTPUTS, "poolIds": ["a"]}), "'poolIds' must map"),
        (json.dumps({**OUTPUTS, "batchAccountEndpoint": "ftp://x"}), "is not an http(s) URL"),
    ],
)
def test_a_bad_outputs_file_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(TargetError) as error:
        resolve_target(stack_outputs=path, environ={})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_outputs_file(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        resolve_target(stack_outputs=tmp_path / "nope.json", environ={})


def test_a_key_without_an_endpoint_is_refused() -> None:
    with pytest.raises(TargetError, match="without AZURE_BATCH_ENDPOINT") as error:
        resolve_target(environ={"AZURE_BATCH_ACCESS_KEY": KEY})
    assert KEY not in str(error.value)


def test_stack_without_the_pulumi_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TargetError, match="the Pulumi CLI is not installed") as error:
        resolve_target(stack="dev", environ={})
    assert "--stack-outputs" in str(error.value)


def fake_pulumi(folder: Path, script: str) -> None:
    """A stand-in for the Pulumi CLI (which cannot run here) on PATH."""
    path = folder / "pulumi"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_stack_runs_pulumi_stack_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    outputs = tmp_path / "out.json"
    outputs.write_text(json.dumps(OUTPUTS))
    fake_pulumi(
        tmp_path,
        f'echo "$@" > {tmp_path}/args\ncat {outputs}\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    target = resolve_target(stack="dev", environ={})
    assert target is not None and target.source == "stack 'dev'"
    assert (tmp_path / "args").read_text().split() == [
        "stack",
        "output",
        "--json",
        "--stack",
        "dev",
    ]


def test_stack_when_pulumi_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_pulumi(tmp_path, "echo 'error: no stack named dev found' >&2\nexit 255\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(TargetError) as error:
        resolve_target(stack="dev", environ={})
    assert str(error.value) == (
        "--stack dev: `pulumi stack output` failed: error: no stack named dev found"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AZURE_BATCH_ENDPOINT": "ftp://x"}, "is not an http(s) URL"),
        ({"AZURE_BATCH_ENDPOINT": "https://"}, "is not an http(s) URL"),
        (
            {
                "AZURE_BATCH_ENDPOINT": "https://a.b.batch.azure.com",
                "AZURE_BATCH_ACCESS_KEY": "no base64!",
            },
            "is not an account key",
        ),
    ],
)
def test_bad_variables_are_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(TargetError) as error:
        resolve_target(environ=environ)
    assert message in str(error.value) and "no base64!" not in str(error.value)
