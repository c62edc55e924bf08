"""Batch's errors on the wire: one table from error code to HTTP status, and the OData
error body every failed request carries (batch-semantics.md 5.8).

The service raises `BackendError`s with Batch's codes; this is the one place that says
which status each code answers with. A code not in the table answers by its kind
(`not_found` 404, `conflict` 409, `unavailable` 500, otherwise 400).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from batchflow.exceptions import ERROR_KINDS

__all__ = ["STATUS", "EmulatorError", "error_body", "status_of"]

#: HTTP status by Batch error code, where it is not the one of its kind.
STATUS: dict[str, int] = {
    "AuthenticationFailed": 403,
    "InsufficientAccountPermissions": 403,
    "ConditionNotMet": 412,  # 304 on a read: the caller decides
    "MissingContentLengthHeader": 411,
    "RequestBodyTooLarge": 413,
    "PoolBeingDeleted": 409,
    "PoolBeingResized": 409,
    "NodeBeingRemoved": 409,
    "PropertyCannotBeUpdated": 400,
    "ServerBusy": 503,
    "TooManyRequests": 429,
    "OperationTimedOut": 500,
    "InternalError": 500,
    "UnsupportedOperation": 405,
}
_BY_KIND = {"not_found": 404, "conflict": 409, "unavailable": 500, "invalid": 400}


def status_of(code: str) -> int:
    """The HTTP status Batch answers an error `code` with."""
    return STATUS.get(code) or _BY_KIND[ERROR_KINDS.get(code, "invalid")]


class EmulatorError(Exception):
    """An error the HTTP edge itself raises (bad header, bad body, auth)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        values: tuple[tuple[str, str], ...] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.values = values
        self.status = status or status_of(code)


def _now() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"


def error_body(
    base_url: str,
    code: str,
    message: str,
    request_id: str,
    values: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The OData error body: code, message (with RequestId and Time as Batch adds them),
    and the optional key/value details."""
    body: dict[str, Any] = {
        "odata.metadata": (
            f"{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors"
            "/@Element"
        ),
        "code": code,
        "message": {
            "lang": "en-US",
            "value": f"{message}\nRequestId:{request_id}\nTime:{_now()}",
        },
    }
    if values:
        body["values"] = [{"key": k, "value": v} for k, v in values]
    return json.dumps(body, separators=(",", ":")).encode()
