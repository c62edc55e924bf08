"""How the Azure backend authenticates: a Shared Key, a token credential over TLS (the
emulator's `--tls` mode accepts bearer tokens), and what a user sees when neither works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

from batchflow.backends.azure import AzureBackend
from batchflow.dsl import Job
from batchflow.emulator import serve
from batchflow.exceptions import BackendError
from batchflow.stack import AzureTarget
from tests.azure.conftest import unsigned_jwt
from tests.backends.conftest import settled


class StaticToken:
    """A token credential (what `DefaultAzureCredential` is to the SDK) that records the
    scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(unsigned_jwt({"aud": scopes[0]}), int(time.time()) + 3600)


def test_a_token_credential_over_tls_runs_a_flow(tmp_path: Path) -> None:
    with serve(state_dir=tmp_path / "state", tls=True) as batch:
        batch.client.create_pool(
            {"id": "pool", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1}
        )
        target = AzureTarget(endpoint=batch.endpoint, account_name="devbatch", source="tls")
        token = StaticToken()
        backend = AzureBackend(target, credential=token, connection_verify=str(batch.ca_file))
        job = Job("tokens", pool="pool")
        job.task("a", "/bin/echo signed-in")
        backend.submit(job)
        assert settled(backend, "tokens").counts.succeeded == 1
        assert backend.read_file("tokens", "a", "stdout.txt") == b"signed-in\n"
        assert token.scopes and all(
            s.startswith("https://batch.core.windows.net/") for s in token.scopes
        )
        backend.close()
        from batchflow.backends.local.paths import StateDir
        from batchflow.emulator.server import stop_engine

        stop_engine(StateDir(batch.state_dir))


def test_entra_id_over_plain_http_is_refused_in_one_line() -> None:
    target = AzureTarget(endpoint="http://127.0.0.1:9", account_name="acct", source="here")
    backend = AzureBackend(target)
    try:
        backend.jobs()
    except BackendError as exc:
        assert exc.code == "AuthenticationFailed"
        assert "AZURE_BATCH_ACCESS_KEY" in str(exc)
    else:
        raise AssertionError("a token over http was not refused")


def test_no_entra_id_credential_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Over https with no key and nothing for `DefaultAzureCredential` to find (no
    variables, no az, no managed identity here): one line naming the ways in."""
    with serve(state_dir=tmp_path / "state", tls=True) as batch:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "BATCHFLOW_", "IDENTITY_", "MSI_"))
        }
        env.update(
            AZURE_BATCH_ENDPOINT=batch.endpoint,
            AZURE_BATCH_ACCOUNT="devbatch",
            REQUESTS_CA_BUNDLE=str(batch.ca_file),
            PATH=str(Path(sys.executable).parent),  # no az, azd or pwsh to ask
            HOME=str(tmp_path),
        )
        done = subprocess.run(
            [sys.executable, "-m", "batchflow", "jobs"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Microsoft Entra ID credential" in lines[0], done.stderr
    assert "AZURE_BATCH_ACCESS_KEY" in lines[0]
