"""Running the emulator: `serve(...)` for users' tests, `run(...)` for the CLI.

The server is uvicorn (asyncio, httptools) around the Starlette application of app.py, over a
`BatchService` on a state directory, whose engine runs the tasks. Jobs created here wait
for their pool, as on Batch (`pool_required`). The engine learns the emulator's endpoint
(`BATCHFLOW_ACCOUNT_URL`, which tasks see as `AZ_BATCH_ACCOUNT_URL`) and the auto-storage
account (`BATCHFLOW_STORAGE_CONNECTION_STRING`) from the environment it is started with.

    with serve() as batch:
        batch.client.create_pool(...)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchflow.backends.local.control import stop_engine
from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.service import BatchService
from batchflow.emulator.auth import Account
from batchflow.emulator.faults import FaultPlan

__all__ = ["DEV_ACCOUNT_KEY", "DEV_ACCOUNT_NAME", "EmulatorHandle", "serve", "stop_engine"]

#: The account name when none is given.
DEV_ACCOUNT_NAME = "devbatch"
#: The well-known development key of the emulator, used when none is given. It is
#: public (printed, documented), like Azurite's devstoreaccount1 key: never a secret.
DEV_ACCOUNT_KEY = (
    "YmF0Y2hmbG93LWVtdWxhdG9yLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0LWRvLW5vdC11c2UtaW4tcHJvZA=="
)


@dataclass
class EmulatorHandle:
    """A running emulator: where it is, its account, and a ready client."""

    endpoint: str
    account_name: str
    account_key: str = field(repr=False)
    state_dir: Path
    #: The self-signed certificate to trust (a CA bundle for clients) under TLS.
    ca_file: Path | None = None
    _client: Any = field(default=None, repr=False)

    def credential(self) -> Any:
        """An `AzureNamedKeyCredential` for the account (Shared Key)."""
        from azure.core.credentials import AzureNamedKeyCredential

        return AzureNamedKeyCredential(self.account_name, self.account_key)

    def new_client(self, **options: Any) -> Any:
        """A new azure-batch `BatchClient` for this emulator (`options` go to it)."""
        from azure.batch import BatchClient

        if self.ca_file is not None:
            options.setdefault("connection_verify", str(self.ca_file))
        return BatchClient(self.endpoint, self.credential(), **options)

    @property
    def client(self) -> Any:
        """A `BatchClient` for this emulator (made on first use, closed with it)."""
        if self._client is None:
            self._client = self.new_client()
        return self._client


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out as headers then body: without this, Nagle holds the body until the
    # client acknowledges the headers (a delayed ACK: 40 ms on every request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def endpoint_of(sock: socket.socket, host: str, tls: bool) -> str:
    """`http://127.0.0.1:PORT` (https under TLS)."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def make_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host`, 127.0.0.1 and localhost (cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "emulator-cert.pem", folder / "emulator-key.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchflow emulator")])
    alt: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if str(address) != "127.0.0.1":
            alt.append(x509.IPAddress(address))
    if host not in ("localhost", "127.0.0.1", "0.0.0.0", "::") and not host[0].isdigit():
        alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class Server:
    """uvicorn serving one emulated account on a bound socket."""

    def __init__(
        self,
        *,
        state_dir: Path,
        sock: socket.socket,
        host: str,
        account_name: str,
        account_key: str,
        tls: bool = False,
        faults: FaultPlan | None = None,
        storage_connection_string: str | None = None,
        slots: int | None = None,
    ) -> None:
        import uvicorn

        from batchflow.emulator.app import build_app

        self.sock = sock
        self.endpoint = endpoint_of(sock, host, tls)
        self.state = StateDir(state_dir)
        self.ca_file: Path | None = None
        # The engine (started by the service, in its own process) reads these.
        os.environ["BATCHFLOW_ACCOUNT_URL"] = self.endpoint
        if storage_connection_string:
            os.environ["BATCHFLOW_STORAGE_CONNECTION_STRING"] = storage_connection_string
        self.service = BatchService(self.state, pool_required=True)
        with self.service.store.write() as db:
            # An engine already running (started by an earlier emulator) reads it here.
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('account_url', ?)",
                (self.endpoint,),
            )
            if slots is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('slots', ?)", (str(slots),)
                )
        app = build_app(self.service, Account(account_name, account_key), tls=tls, faults=faults)
        options: dict[str, Any] = {}
        if tls:
            cert, key = make_certificate(state_dir / "tls", host)
            self.ca_file = cert
            options.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
        config = uvicorn.Config(
            app,
            http="auto",  # httptools (C) when installed, else h11
            loop="asyncio",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=30,
            **options,
        )
        self.uvicorn = uvicorn.Server(config)

    def run(self) -> None:
        """Serve until `stop()` (or SIGINT/SIGTERM in the main thread)."""
        try:
            self.uvicorn.run(sockets=[self.sock])
        finally:
            self.service.close()
            self.sock.close()

    def stop(self) -> None:
        """Ask the server to finish its requests and stop."""
        self.uvicorn.should_exit = True


_SAVED_VARIABLES = ("BATCHFLOW_ACCOUNT_URL", "BATCHFLOW_STORAGE_CONNECTION_STRING")


@contextlib.contextmanager
def serve(
    *,
    state_dir: str | os.PathLike[str] | None = None,
    account_name: str = DEV_ACCOUNT_NAME,
    account_key: str = DEV_ACCOUNT_KEY,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    faults: str | FaultPlan | None = None,
    storage_connection_string: str | None = None,
) -> Iterator[EmulatorHandle]:
    """An emulator in a background thread for the length of the block.

    Without `state_dir` it uses a temporary one, removed afterwards (with any engine
    still running tasks there stopped first). `faults` is a `--faults` spec.

        with serve() as batch:
            batch.client.create_job(...)
    """
    import time

    saved = {k: os.environ.get(k) for k in _SAVED_VARIABLES}
    temporary = state_dir is None
    if state_dir is None:
        root = Path(tempfile.mkdtemp(prefix="batchflow-emulator-"))
    else:
        root = Path(state_dir)
    plan = FaultPlan.parse(faults) if isinstance(faults, str) else faults
    server = Server(
        state_dir=root / "state" if temporary else root,
        sock=bind(host, port),
        host=host,
        account_name=account_name,
        account_key=account_key,
        tls=tls,
        faults=plan,
        storage_connection_string=storage_connection_string,
    )
    thread = threading.Thread(target=server.run, name="batchflow-emulator", daemon=True)
    thread.start()
    while not server.uvicorn.started and thread.is_alive():
        time.sleep(0.01)
    handle = EmulatorHandle(
        endpoint=server.endpoint,
        account_name=account_name,
        account_key=account_key,
        state_dir=server.state.root,
        ca_file=server.ca_file,
    )
    try:
        yield handle
    finally:
        if handle._client is not None:
            handle._client.close()
        server.stop()
        thread.join(30)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if temporary:
            stop_engine(server.state)
            shutil.rmtree(root, ignore_errors=True)
