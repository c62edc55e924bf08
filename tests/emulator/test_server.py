"""Running the emulator: fault injection, restarts, TLS with tokens, the command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, HttpResponseError

from batchflow.emulator import serve
from batchflow.emulator.faults import FaultPlan
from tests.emulator.conftest import wait_for

POOL = {"id": "pool", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "taskSlotsPerNode": 4}


def test_fault_plans_are_deterministic_and_checked() -> None:
    first = FaultPlan.parse("rate=0.3,codes=429:503,reset=0.1,seed=7")
    second = FaultPlan.parse("rate=0.3,codes=429:503,reset=0.1,seed=7")
    draws = [first.draw(True) for _ in range(200)]
    assert draws == [second.draw(True) for _ in range(200)]
    kinds = {f.status for f in draws if f}
    assert kinds == {0, 429, 503}
    assert any(f and f.partial is not None for f in draws)
    assert all(f.partial is None for f in draws if f and f.status == 429)
    for bad in ("rate=2", "codes=200", "speed=1", "rate=x"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)


def test_with_faults_the_sdk_adds_every_task_exactly_once(tmp_path: Path) -> None:
    plan = "rate=0.25,codes=429:503,reset=0.1,seed=11,retry_after=0"
    with serve(state_dir=tmp_path / "state", faults=plan) as batch:
        client = batch.new_client(retry_backoff_factor=0.01)

        def again(call: Any) -> Any:
            # Writes other than collections: a dropped connection on a POST is not
            # retried by azure-core; the fault landed before the work, so retry here.
            for _ in range(20):
                try:
                    return call()
                except AzureError as exc:
                    if isinstance(exc, HttpResponseError) and exc.status_code not in (200, None):
                        raise
            raise AssertionError("20 faults in a row")

        again(lambda: client.create_pool(POOL))
        again(lambda: client.create_job({"id": "j", "poolInfo": {"poolId": "pool"}}))
        pending = [
            m.BatchTaskCreateOptions(id=f"t{i:03d}", command_line="/bin/true") for i in range(600)
        ]
        dropped = 0
        while pending:
            try:
                client.create_tasks("j", pending)
                pending = []
            except m.CreateTasksError as exc:
                assert not exc.failure_tasks  # only unknown outcomes, never a refusal
                dropped += 1
                pending = list(exc.pending_tasks)
        assert dropped > 0  # the plan drops connections: the retries above were exercised
        ids = again(lambda: [t.id for t in client.list_tasks("j", select=["id"])])
        assert sorted(ids) == [f"t{i:03d}" for i in range(600)]
        assert again(lambda: client.get_job_task_counts("j")).task_counts.active >= 0
        client.close()


def test_a_restart_serves_the_same_jobs(tmp_path: Path) -> None:
    from batchflow.backends.local.paths import StateDir
    from batchflow.emulator.server import stop_engine

    state = tmp_path / "state"
    gate = tmp_path / "gate"
    try:
        with serve(state_dir=state) as batch:
            batch.client.create_pool(POOL)
            batch.client.create_job({"id": "kept", "poolInfo": {"poolId": "pool"}})
            batch.client.create_task(
                "kept",
                {
                    "id": "waits",
                    "commandLine": f"/bin/sh -c 'while ! test -e {gate}; do sleep 0.05; done'",
                },
            )
            batch.client.create_task("kept", {"id": "quick", "commandLine": "/bin/true"})
            wait_for(lambda: batch.client.get_job_task_counts("kept").task_counts.succeeded == 1)
        with serve(state_dir=state) as batch:
            assert [j.id for j in batch.client.list_jobs()] == ["kept"]
            assert batch.client.get_task("kept", "quick").state == m.BatchTaskState.COMPLETED
            # The engine kept running the waiting task across the restart; a task started
            # now sees the new endpoint as AZ_BATCH_ACCOUNT_URL, not the old one.
            batch.client.create_task(
                "kept", {"id": "url", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_ACCOUNT_URL'"}
            )
            wait_for(lambda: batch.client.get_job_task_counts("kept").task_counts.succeeded == 2)
            url = b"".join(batch.client.download_task_file("kept", "url", "stdout.txt"))
            assert url.decode().strip() == batch.endpoint
            gate.write_text("go")
            wait_for(lambda: batch.client.get_job_task_counts("kept").task_counts.succeeded == 3)
    finally:
        gate.write_text("go")
        stop_engine(StateDir(state))  # also when an assertion failed: no engine outlives it


class _Token:
    """A token credential as DefaultAzureCredential is one: a well-formed (unsigned) JWT."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from tests.azure.conftest import unsigned_jwt

        return AccessToken(unsigned_jwt({"aud": scopes[0]}), int(time.time()) + 3600)


def test_tls_with_shared_key_and_bearer_tokens(tmp_path: Path) -> None:
    with serve(state_dir=tmp_path / "state", tls=True) as batch:
        assert batch.endpoint.startswith("https://")
        assert batch.ca_file is not None and batch.ca_file.exists()
        batch.client.create_pool(POOL)
        token_client = BatchClient(batch.endpoint, _Token(), connection_verify=str(batch.ca_file))
        assert [p.id for p in token_client.list_pools()] == ["pool"]
        token_client.close()
    with serve(state_dir=tmp_path / "plain") as batch:
        # azure-core refuses bearer tokens over http; a raw one is refused by the emulator
        import http.client
        from urllib.parse import urlsplit

        url = urlsplit(batch.endpoint)
        connection = http.client.HTTPConnection(url.hostname, url.port)
        connection.request("GET", "/pools?api-version=x", headers={"Authorization": "Bearer a.b.c"})
        response = connection.getresponse()
        assert response.status == 403
        connection.close()


def _emulator_command(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHFLOW_", "AZURE_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "batchflow", "emulator", "--port", "0", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_prints_one_line_and_stops_cleanly(tmp_path: Path, stop: int) -> None:
    key = "c2VjcmV0LWtleS1mb3ItdGhlLWNvbW1hbmQtdGVzdC1zZWNyZXQta2V5LWZvci10ZXN0"
    process = _emulator_command("--account-name", "acct", "--account-key", key, cwd=tmp_path)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "account acct" in line and "http://127.0.0.1:" in line
    assert key not in line and "key given" in line
    endpoint = line.split()[2]
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(endpoint, AzureNamedKeyCredential("acct", key))
    client.create_job({"id": "from-cli", "poolInfo": {"poolId": "p"}})
    assert client.get_job("from-cli").state == m.BatchJobState.ACTIVE
    client.close()
    process.send_signal(stop)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert key not in out + err
    assert (tmp_path / ".batchflow" / "state.db").exists()


def test_the_command_prints_the_development_key_when_none_is_given(tmp_path: Path) -> None:
    from batchflow.emulator import DEV_ACCOUNT_KEY

    process = _emulator_command(cwd=tmp_path)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"the development key {DEV_ACCOUNT_KEY}" in line and "account devbatch" in line
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--faults", "rate=lots"],
        ["--account-key", "not base64!"],
        ["--slots", "0"],
        ["--pool", "bad id"],
        ["--pool", "p:x"],
        ["--pool", "p:1:0"],
        ["--pool", "p:1:2:3"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    process = _emulator_command(*args, cwd=tmp_path)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
