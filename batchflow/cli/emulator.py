"""`batchflow emulator`: serve the Azure Batch data-plane API on this machine.

The server (starlette, uvicorn) is imported only when the command runs, so
`batchflow --help` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import signal
from pathlib import Path
from typing import Annotated

import typer

from batchflow.cli.output import EXIT_BAD_INPUT, error_line, failures

__all__ = ["emulator", "register"]


def _bad(message: str) -> typer.Exit:
    error_line(f"batchflow emulator: error: {message}")
    return typer.Exit(EXIT_BAD_INPUT)


def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 8443,
    account_name: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHFLOW_EMULATOR_ACCOUNT_NAME",
            help="Account name clients sign with (default: devbatch).",
            show_default=False,
        ),
    ] = None,
    account_key: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHFLOW_EMULATOR_ACCOUNT_KEY",
            help="Base64 account key (default: the documented development key). Prefer "
            "the environment variable: a command line is visible to other users.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="BATCHFLOW_STATE_DIR",
            help="State directory, shared with the local engine (default: ./.batchflow).",
            show_default=False,
        ),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Task slots of each of the state directory's own nodes (as `submit "
            "--slots`; the emulator's pools have their taskSlotsPerNode).",
            show_default=False,
        ),
    ] = None,
    storage_connection_string: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHFLOW_STORAGE_CONNECTION_STRING",
            help="The account's auto-storage (e.g. Azurite's connection string), for "
            "autoStorageContainerName.",
            show_default=False,
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help="Inject faults: 'rate=0.1,codes=429:503,reset=0.02,seed=7' "
            "(also retry_after=SECONDS).",
            show_default=False,
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="Serve HTTPS with a generated self-signed certificate; bearer tokens "
            "are then accepted too (unverified: a test convenience).",
        ),
    ] = False,
) -> None:
    """Serve the Azure Batch data-plane API here, for the azure-batch SDK and `az batch`.

    Jobs, tasks and pools persist in the state directory: a restart serves them again.
    """
    from batchflow.backends.local.paths import resolve_state_dir
    from batchflow.emulator.faults import FaultPlan
    from batchflow.emulator.server import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    name = account_name or DEV_ACCOUNT_NAME
    if account_key is None:
        key, source = DEV_ACCOUNT_KEY, f"the development key {DEV_ACCOUNT_KEY}"
    else:
        key, source = account_key, "the key given (--account-key / BATCHFLOW_EMULATOR_ACCOUNT_KEY)"
        try:
            if not base64.b64decode(key, validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise _bad("--account-key is not a base64 key") from None
    if not 0 <= port <= 65535:
        raise _bad(f"--port {port} is not a port (0 to 65535)")
    plan = None
    if faults:
        try:
            plan = FaultPlan.parse(faults)
        except ValueError as exc:
            raise _bad(f"--faults: {exc}") from None
    with failures():
        from batchflow.emulator.server import Server, bind

        try:
            sock = bind(host, port)
        except OSError as exc:
            raise _bad(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        server = Server(
            state_dir=resolve_state_dir(state_dir),
            sock=sock,
            host=host,
            account_name=name,
            account_key=key,
            tls=tls,
            faults=plan,
            storage_connection_string=storage_connection_string,
            slots=slots,
        )
        # A signal stops the server, before it runs too; uvicorn re-raises the one that
        # stopped it once it is done, which lands here again, harmlessly (exit 0).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.stop())
        extra = f", certificate {server.ca_file}" if server.ca_file else ""
        typer.echo(
            f"batchflow emulator: {server.endpoint} account {name}, key: {source}{extra} "
            f"(state {server.state.root}; Ctrl-C stops)"
        )
        server.run()


def register(app: typer.Typer) -> None:
    """Add the command to the application."""
    app.command()(emulator)
