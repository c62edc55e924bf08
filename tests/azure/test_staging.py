"""`inputs=`, `outputs=` and hand-offs on Azure: staged through a real Azurite, run by the
emulator's nodes (which read and write the account with its credential, as a node's
managed identity would), through the real azure-batch and azure-storage-blob SDKs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batchflow.backends.azure import AzureBackend
from batchflow.backends.azure.staging import Stager, output_path
from batchflow.backends.local.paths import StateDir
from batchflow.dsl import Job
from batchflow.emulator import serve
from batchflow.emulator.server import stop_engine
from batchflow.exceptions import BackendError
from batchflow.stack import AzureTarget
from tests.azure.conftest import clean_env, emulator_process, unsigned_jwt
from tests.backends.conftest import settled
from tests.servers import Azurite

NODES = (
    "/subscriptions/0/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/nodes"
)


@pytest.fixture
def staged(azurite: Azurite, tmp_path: Path) -> Iterator[tuple[AzureBackend, Any]]:
    """An emulator whose auto-storage is Azurite, and a backend whose stack has storage
    (fresh containers per test) and a node identity."""
    suffix = uuid.uuid4().hex[:8]
    containers = {"inputs": f"in{suffix}", "outputs": f"out{suffix}", "logs": f"logs{suffix}"}
    with serve(
        state_dir=tmp_path / "emulator", storage_connection_string=azurite.connection_string
    ) as batch:
        batch.client.create_pool(
            {
                "id": "pool",
                "vmSize": "standard_d2s_v3",
                "targetDedicatedNodes": 2,
                "taskSlotsPerNode": 2,
            }
        )
        target = AzureTarget(
            endpoint=batch.endpoint,
            account_name=batch.account_name,
            source="the emulator",
            account_key=batch.account_key,
            pool_ids={"main": "pool"},
            storage_account=azurite.account_name,
            blob_endpoint=azurite.account_url,
            containers=containers,
            node_identity=NODES,
            storage_connection_string=azurite.connection_string,
        )
        backend = AzureBackend(target)
        try:
            yield backend, azurite.service()
        finally:
            backend.close()
            stop_engine(StateDir(batch.state_dir))


def flow(folder: Path, job_id: str) -> Job:
    (folder / "data.txt").write_text("forty-two\n")
    (folder / "lib").mkdir(exist_ok=True)
    (folder / "lib" / "words.txt").write_text("alpha\nbeta\n")
    job = Job(job_id, pool="main")
    job.source = str(folder / "flow.py")  # as if the flow file were in `folder`
    parts = job.map(
        "part-{i}",
        "/bin/sh -c 'mkdir -p out && cat data.txt lib/words.txt > out/{i}.txt "
        "&& echo {i} > result.txt'",
        i=range(3),
        inputs=["data.txt", "lib"],
        outputs=["result.txt", "out/*.txt"],
    )
    job.task(
        "merge",
        "/bin/sh -c 'cat $AZ_BATCH_JOB_ID/*/result.txt; ls $AZ_BATCH_JOB_ID/part-1/out'",
        inputs=[parts],
        outputs=["result.txt"],
    )
    return job


def test_inputs_outputs_and_handoffs_run_on_the_pool(
    staged: tuple[AzureBackend, Any], tmp_path: Path
) -> None:
    backend, storage = staged
    job = flow(tmp_path, "staged")
    backend.submit(job)
    status = settled(backend, "staged")
    assert status.counts.succeeded == 4, [
        (t.id, t.failure_info) for t in backend.tasks("staged") if t.result != "success"
    ]
    # The inputs were uploaded once (3 tasks share them), by content.
    inputs = backend.target.containers["inputs"]
    names = sorted(b.name for b in storage.get_container_client(inputs).list_blobs())
    assert len(names) == 2 and {n.rsplit("/", 1)[1] for n in names} == {"data.txt", "words.txt"}
    # Outputs under JOB/TASK/ at the paths the local engine collects them at.
    outputs = backend.target.containers["outputs"]
    blobs = {b.name for b in storage.get_container_client(outputs).list_blobs()}
    assert {"staged/part-0/result.txt", "staged/part-0/out/0.txt"} <= blobs
    # The merge was handed every part's files, at JOB/PARENT/<path>.
    assert backend.read_file("staged", "merge", "stdout.txt") == b"0\n1\n2\n1.txt\n"
    assert backend.read_file("staged", "part-2", "wd/out/2.txt") == b"forty-two\nalpha\nbeta\n"
    # A second job with the same inputs uploads nothing.
    backend.submit(flow(tmp_path, "again"))
    assert (backend.stager.uploaded, backend.stager.present) == (0, 2)
    assert settled(backend, "again").counts.succeeded == 4


def test_download_reads_the_outputs_container_when_the_node_file_is_gone(
    staged: tuple[AzureBackend, Any], tmp_path: Path
) -> None:
    backend, _storage = staged
    job = Job("kept", pool="main")
    job.task("make", "/bin/sh -c 'echo kept > result.txt'", outputs=["result.txt"])
    backend.submit(job)
    settled(backend, "kept")
    backend.client.delete_task_file("kept", "make", "wd/result.txt")
    assert backend.read_file("kept", "make", "wd/result.txt") == b"kept\n"
    with pytest.raises(BackendError):
        backend.read_file("kept", "make", "wd/never-made.txt")


def test_without_storage_outputs_are_refused_in_one_line(batch_emulator: Any) -> None:
    target = AzureTarget(
        endpoint=batch_emulator.endpoint,
        account_name=batch_emulator.account_name,
        source="outputs.json",
        account_key=batch_emulator.account_key,
        pool_ids={"main": "pool"},
    )
    job = Job("nostore", pool="main")
    job.task("make", "/bin/true", outputs=["result.txt"])
    with pytest.raises(BackendError) as error:
        AzureBackend(target).submit(job)
    assert "storageBlobEndpoint" in str(error.value)


def test_without_a_node_identity_no_account_key_sas_is_made(azurite: Azurite) -> None:
    target = AzureTarget(
        endpoint="https://acct.region.batch.azure.com",
        account_name="acct",
        source="outputs.json",
        blob_endpoint=azurite.account_url,
        storage_connection_string=azurite.connection_string,
    )
    with pytest.raises(BackendError, match="signs no SAS with an account key"):
        Stager(target).output_files("j", "t", ("out.txt",))


@pytest.mark.parametrize(
    ("pattern", "below"),
    [
        ("result.txt", "result.txt"),
        ("out/a.csv", "out/a.csv"),
        ("*.txt", ""),
        ("out/*.png", "out"),
        ("out/**/*.txt", "out"),
        ("../stdout.txt", "stdout.txt"),
        ("../std*.txt", ""),
    ],
)
def test_output_paths_match_the_local_layout(pattern: str, below: str) -> None:
    assert output_path(pattern) == below


def test_the_cli_stages_through_an_emulator_rehearsal(azurite: Azurite, tmp_path: Path) -> None:
    """`batchflow emulator --storage-connection-string ... --write-outputs F` names its
    storage and node identity; `submit --stack-outputs F` stages through it, `download`
    reads the outputs."""
    import json
    import subprocess
    import sys

    from batchflow.emulator import DEV_ACCOUNT_KEY

    env = clean_env()
    outputs = tmp_path / "outputs.json"
    with emulator_process(
        str(tmp_path / "emulator"),
        "--pool",
        "main:1:2",
        "--storage-connection-string",
        azurite.connection_string,
        "--write-outputs",
        str(outputs),
    ):
        written = json.loads(outputs.read_text())
        assert written["storageBlobEndpoint"] == azurite.account_url
        assert written["storageAccountName"] == azurite.account_name
        assert azurite.account_key not in outputs.read_text()
        (tmp_path / "words.txt").write_text("alpha\n")
        (tmp_path / "flow.py").write_text(
            "from batchflow import Job\n"
            'job = Job("rehearsal")\n'
            'first = job.task("first", "/bin/sh -c \'cat words.txt > result.txt\'",\n'
            '                 inputs=["words.txt"], outputs=["result.txt"])\n'
            'job.task("second", "/bin/sh -c \'cat $AZ_BATCH_JOB_ID/first/result.txt\'",\n'
            "         inputs=[first])\n"
        )
        env.update(
            AZURE_BATCH_ACCESS_KEY=DEV_ACCOUNT_KEY,
            AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
        )

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "batchflow", *args, "--stack-outputs", str(outputs)],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        done = cli("submit", "flow.py")
        assert done.returncode == 0, done.stderr
        assert "staged 1 input file (1 uploaded, 0 already there)" in done.stdout
        assert cli("logs", "rehearsal", "second").stdout == "alpha\n"
        fetched = cli("download", "rehearsal", "first", "wd/result.txt", "-o", "got.txt")
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "got.txt").read_text() == "alpha\n"
        for each in (done, fetched):
            assert azurite.account_key not in each.stdout + each.stderr


class StorageToken:
    """A token credential for Azurite's `--oauth basic` (it checks the token's form, the
    audience and the times, not a signature)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        now = int(time.time())
        tenant = "ab1f708d-50f6-404c-a006-d71b2ac7a606"
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{tenant}/",
            "tid": tenant,
            "oid": "0b1c0d2e-0000-0000-0000-000000000001",
            "iat": now - 300,
            "nbf": now - 300,
            "exp": now + 3600,
        }
        return AccessToken(unsigned_jwt(claims, {"alg": "RS256", "typ": "JWT"}), now + 3600)


@pytest.fixture
def oauth_azurite(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Azurite over https with OAuth (Entra ID tokens, user-delegation keys): its account
    URL and the CA file to trust."""
    from batchflow.emulator.server import make_certificate
    from tests.servers import running_azurite

    cert, key = make_certificate(tmp_path / "tls", "127.0.0.1")
    options = ("--oauth", "basic", "--cert", str(cert), "--key", str(key))
    with running_azurite(tmp_path, *options) as port:
        yield f"https://127.0.0.1:{port}/devstoreaccount1", str(cert)


def test_without_a_node_identity_nodes_get_a_user_delegation_sas(
    oauth_azurite: tuple[str, str], tmp_path: Path
) -> None:
    """Signed in with Entra ID and no node identity: the user-delegation key comes from the
    storage (Azurite over OAuth), and the URLs in the task carry a user-delegation SAS:
    read-only for inputs, create/write for outputs, at most 7 days, hidden in everything
    batchflow prints. (Azurite 3.35 cannot check the signature itself: the current
    azure-storage-blob signs a newer SAS version than it knows; the signing is the SDK's.)"""
    from urllib.parse import parse_qs, urlsplit

    from azure.storage.blob import BlobServiceClient

    from batchflow.redact import redact

    url, ca = oauth_azurite
    suffix = uuid.uuid4().hex[:8]
    target = AzureTarget(
        endpoint="https://acct.region.batch.azure.com",
        account_name="acct",
        source="outputs.json",
        blob_endpoint=url,
        containers={"inputs": f"in{suffix}", "outputs": f"out{suffix}"},
    )
    service = BlobServiceClient(url, credential=StorageToken(), connection_verify=ca)
    stager = Stager(target, service=service)
    (tmp_path / "data.txt").write_text("by delegation\n")
    job = Job("sas")
    job.source = str(tmp_path / "flow.py")
    job.task("t", "/bin/true", inputs=["data.txt"], outputs=["out.txt"])
    (resource,) = stager.stage_inputs(job)[("data.txt",)]
    assert "identityReference" not in resource
    assert "sig=***" in redact(resource["httpUrl"])
    read = parse_qs(urlsplit(resource["httpUrl"]).query)
    assert read["sp"] == ["r"] and read["sr"] == ["c"] and read["skoid"]
    blob = resource["httpUrl"].split("?")[0]
    assert service.get_blob_client(f"in{suffix}", blob.rsplit(f"in{suffix}/", 1)[1]).exists()
    (output,) = stager.output_files("sas", "t", ("out.txt",))
    container = output["destination"]["container"]
    assert "identityReference" not in container and container["path"] == "sas/t/out.txt"
    write = parse_qs(urlsplit(container["containerUrl"]).query)
    assert write["sp"] == ["rcw"] and write["skoid"] == read["skoid"]
    lifetime = datetime.fromisoformat(write["se"][0].replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < lifetime <= timedelta(days=7)
    stager.close()


def test_a_storage_key_that_is_no_key_is_one_line() -> None:
    target = AzureTarget(
        endpoint="https://acct.region.batch.azure.com",
        account_name="acct",
        source="outputs.json",
        storage_account="st",
        blob_endpoint="https://st.blob.core.windows.net",
        storage_key="not a key!",
    )
    with pytest.raises(BackendError) as error:
        Stager(target).service  # noqa: B018 - connecting is what is tested
    assert "AZURE_STORAGE_KEY is not a storage account key" in str(error.value)
    assert "not a key!" not in str(error.value)
