"""Real servers for the file-staging tests, started once per session.

- `azurite`: the Azure Storage emulator (npm `azurite`, installed by `make test` from
  package-lock.json) on a free loopback port. If it cannot start, the fixture fails: the
  storage tests must never be skipped.
- `http_server`: a threaded `http.server` on a free loopback port that serves files, any
  status code, a SAS-protected path, a slow answer, a flaky one and a redirect.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

REPO = Path(__file__).resolve().parent.parent
AZURITE_BLOB = REPO / "node_modules" / ".bin" / "azurite-blob"
#: The well-known development account every Azurite has (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """A TCP port nobody listens on right now (on the loopback interface)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Azurite:
    """A running Azurite blob service and helpers to make containers in it."""

    port: int
    account_name: str = ACCOUNT
    account_key: str = ACCOUNT_KEY

    @property
    def account_url(self) -> str:
        """`http://127.0.0.1:<port>/devstoreaccount1` (path-style, as Azurite serves)."""
        return f"http://127.0.0.1:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        """A connection string for the account, as `AZURE_STORAGE_CONNECTION_STRING` takes."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.account_url};"
        )

    def service(self) -> BlobServiceClient:
        """A client for the whole account, authenticated with the account key."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def new_container(self, *, create: bool = True) -> ContainerClient:
        """A fresh, uniquely named container (not created when `create=False`)."""
        client = self.service().get_container_client(f"c{uuid.uuid4().hex[:16]}")
        if create:
            client.create_container()
        return client

    def sas_url(self, container: str, permission: str = "racwdl") -> str:
        """A container SAS URL (`permission` in `racwdl` letters) valid for an hour."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        token = generate_container_sas(
            self.account_name,
            container,
            account_key=self.account_key,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        return f"{self.account_url}/{container}?{token}"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Azurite exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"Azurite did not listen on port {port} within 60 s:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_azurite(workspace: Path, *options: str) -> Iterator[int]:
    """A real Azurite blob service (with extra command-line `options`) until the block
    ends; its port. Fails, never skips, if it cannot run."""
    if not AZURITE_BLOB.exists():
        pytest.fail(f"{AZURITE_BLOB} is missing: run `npm ci` (make test does it)")
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed to run Azurite; install it (see the README)")
    log = workspace / "azurite.log"
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                str(AZURITE_BLOB),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--skipApiVersionCheck",
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                *options,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workspace,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A real Azurite blob service for the session."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as port:
        yield Azurite(port)


@dataclass
class HttpServer:
    """The loopback HTTP server: `url(path)`, the files it serves, the requests it saw."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    flaky_failures: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """`http://127.0.0.1:<port><path>`."""
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, name: str, data: bytes) -> str:
        """Serve `data` at `/files/<name>` and return its URL."""
        self.files[name] = data
        return self.url(f"/files/{name}")


class _Handler(BaseHTTPRequestHandler):
    """Routes:
    /files/NAME           the bytes registered with `serve` (XML if NAME ends .xml), else 404
    /sas/NAME?sig=good    the file, only with the right signature, else 403
    /status/CODE          that status, empty body
    /slow/SECONDS/NAME    the file after a pause
    /flaky/N/NAME         503 for the first N requests of NAME, then the file
    /redirect/NAME        302 to /files/NAME
    /truncated/NAME       promises more bytes than it sends
    A PUT is answered as a GET of the same path (its body is not read).
    """

    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, name: str) -> None:
        data = self.server.state.files.get(name)
        if data is None:
            self._send(404, b"not found")
        else:
            kind = "application/xml" if name.endswith(".xml") else "application/octet-stream"
            self._send(200, data, {"Content-Type": kind})

    def do_GET(self) -> None:
        state = self.server.state
        state.requests.append(self.path)
        parts = urlsplit(self.path)
        route, _, rest = parts.path.lstrip("/").partition("/")
        if route == "files":
            self._file(rest)
        elif route == "sas":
            good = parse_qs(parts.query).get("sig") == ["good"]
            self._file(rest) if good else self._send(403, b"AuthenticationFailed")
        elif route == "status":
            self._send(int(rest.partition("/")[0]))
        elif route == "slow":
            seconds, _, name = rest.partition("/")
            time.sleep(float(seconds))
            with contextlib.suppress(OSError):  # the client may have given up
                self._file(name)
        elif route == "flaky":
            count, _, name = rest.partition("/")
            seen = state.flaky_failures.get(name, 0)
            state.flaky_failures[name] = seen + 1
            self._send(503, b"busy") if seen < int(count) else self._file(name)
        elif route == "redirect":
            self._send(302, headers={"Location": f"/files/{rest}"})
        elif route == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a little")
            self.close_connection = True
        else:
            self._send(404)

    do_PUT = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HttpServer


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    """A real HTTP server on a free loopback port, for the session."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = HttpServer(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="http-server", daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
