"""`batchflow emulator`: serve the Azure Batch data-plane API on this machine.

The server (starlette, uvicorn) is imported only when the command runs, so
`batchflow --help` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import signal
from pathlib import Path
from typing import Annotated, Any

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
    pool: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            help="Create this pool at start unless it exists: ID[:NODES[:SLOTS]] "
            "(default 1 node, 1 slot); repeat for more.",
            show_default=False,
        ),
    ] = None,
    write_outputs: Annotated[
        Path | None,
        typer.Option(
            "--write-outputs",
            help="Write this emulator's stack outputs (as `pulumi stack output --json`, no "
            "key) to FILE, for `batchflow --stack-outputs FILE`.",
            show_default=False,
        ),
    ] = None,
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
    pools = [_pool_spec(p) for p in pool or ()]
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
        for spec in pools:
            if not server.service.pools.exists(spec["id"]):
                server.service.pools.create(spec)
        if write_outputs is not None:
            _write_outputs(
                write_outputs,
                server.endpoint,
                name,
                [p["id"] for p in pools],
                storage_connection_string,
            )
        extra = f", certificate {server.ca_file}" if server.ca_file else ""
        typer.echo(
            f"batchflow emulator: {server.endpoint} account {name}, key: {source}{extra} "
            f"(state {server.state.root}; Ctrl-C stops)"
        )
        server.run()


def _pool_spec(text: str) -> dict[str, Any]:
    """`render:2:4` -> a pool of 2 nodes with 4 task slots each."""
    from batchflow.names import is_id

    parts = text.split(":")
    if len(parts) > 3:
        raise _bad(f"--pool {text}: expected ID[:NODES[:SLOTS]]")
    if not is_id(parts[0]):
        raise _bad(
            f"--pool {text}: '{parts[0]}' is not a pool id (letters, digits, - and _, at most 64)"
        )
    numbers: list[int] = []
    for what, part in zip(("NODES", "SLOTS"), parts[1:], strict=False):
        if not part.isdigit() or (what == "SLOTS" and int(part) < 1):
            raise _bad(f"--pool {text}: {what} must be a whole number")
        numbers.append(int(part))
    nodes, slots = [*numbers, 1, 1][:2]
    return {
        "id": parts[0],
        "vmSize": "standard_d2s_v3",
        "targetDedicatedNodes": nodes,
        "taskSlotsPerNode": slots,
    }


#: The node identity an emulator's outputs name: its nodes reach the auto-storage account
#: with its credential whenever a resource or output file names an identity.
EMULATOR_NODE_IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/batchflow-emulator/"
    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/emulator-nodes"
)


def _write_outputs(
    path: Path, endpoint: str, account: str, pools: list[str], storage: str | None
) -> None:
    import json

    from batchflow import stack

    outputs: dict[str, Any] = {
        stack.BATCH_ACCOUNT_NAME: account,
        stack.BATCH_ACCOUNT_ENDPOINT: endpoint,
        stack.POOL_IDS: {pool: pool for pool in pools},
        stack.CONTAINERS: {role: role for role in stack.CONTAINER_ROLES},
    }
    if storage:
        from batchflow.storage import AutoStorage

        auto = AutoStorage.from_env({"BATCHFLOW_STORAGE_CONNECTION_STRING": storage})
        if auto is not None:
            settings = dict(part.split("=", 1) for part in storage.split(";") if "=" in part)
            outputs[stack.STORAGE_ACCOUNT_NAME] = settings.get("AccountName", "")
            outputs[stack.STORAGE_BLOB_ENDPOINT] = auto.blob_endpoint()
            outputs[stack.NODE_IDENTITY_RESOURCE_ID] = EMULATOR_NODE_IDENTITY
    try:
        path.write_text(json.dumps(outputs, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _bad(f"--write-outputs: cannot write {path}: {exc.strerror}") from None


def register(app: typer.Typer) -> None:
    """Add the command to the application."""
    app.command()(emulator)
