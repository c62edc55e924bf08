"""Fixtures for the emulator tests: a running emulator with a pool, through real clients.

The emulator runs in a thread of the test process (`serve`), its engine in its own
process; every request goes through the real azure-batch SDK or, for what `az` sends, a
raw signed HTTP request (`raw`).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import pytest

from batchflow.emulator.auth import Account, string_to_sign
from batchflow.emulator.pytest_plugin import batch_client, batch_emulator  # noqa: F401 - fixtures
from batchflow.emulator.server import EmulatorHandle

WAIT = 60.0


def wait_for(condition: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `condition` until it is truthy (fails the test after `timeout`)."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def raw(
    handle: EmulatorHandle,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    sign_path: str | None = None,
    key: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request as `az` would send it, signed with Batch's Shared Key (`sign_path`:
    the path to sign when not the one sent, as msrest signs %2F decoded)."""
    url = urlsplit(handle.endpoint)
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    sent = {"ocp-date": formatdate(usegmt=True), "Accept": "application/json"}
    if body is not None:
        sent["Content-Type"] = "application/json; odata=minimalmetadata"
    if method not in ("GET", "HEAD"):
        sent["Content-Length"] = str(len(data))
    sent.update(headers or {})
    route, _, query = path.partition("?")
    text = string_to_sign(
        method,
        {k.lower(): v for k, v in sent.items()},
        handle.account_name,
        sign_path or route,
        query,
    )
    account = Account(handle.account_name, key or handle.account_key)
    sent["Authorization"] = f"SharedKey {handle.account_name}:{account.sign(text)}"
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(
            method, path, body=data if data or method not in ("GET", "HEAD") else None, headers=sent
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def job_spec(job_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "poolInfo": {"poolId": "pool"}, **extra}


@pytest.fixture
def emulator(batch_emulator: EmulatorHandle) -> EmulatorHandle:  # noqa: F811
    """The plugin's emulator (a pool `pool` of one node with 4 slots)."""
    return batch_emulator


@pytest.fixture
def client(emulator: EmulatorHandle) -> Any:
    """Its azure-batch `BatchClient`."""
    return emulator.client
