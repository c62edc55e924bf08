"""The emulator's HTTP application: one request cycle around the service's operations.

Every request goes through the same steps: authenticate (auth.py), maybe meet an
injected fault (faults.py), read its body, run the operation in a worker thread (the
store gives each thread its own SQLite connection), and answer in Batch's form: JSON
with `odata.metadata`, `request-id`, `client-request-id` echoed, `ETag` (quoted) and
`Last-Modified` (RFC 1123) on entities, `DataServiceId` and `Location` on 201, and
errors as Batch's OData error bodies with the status of errors.py. The operations
themselves (routes.py) are thin: they parse what the request says and call the service,
where every rule of Batch lives.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from batchflow.backends.local.conditions import Conditions
from batchflow.backends.local.service import BatchService
from batchflow.emulator.auth import Account, authenticate
from batchflow.emulator.errors import EmulatorError, error_body
from batchflow.emulator.faults import Fault, FaultPlan
from batchflow.exceptions import BackendError, StateError

__all__ = ["Call", "Reply", "build_app"]

_LOG = logging.getLogger("batchflow.emulator")
#: Largest body of an addtaskcollection (Batch: under 1 MB; 413 RequestBodyTooLarge).
MAX_COLLECTION_BYTES = 1024 * 1024
#: Largest body of any other request.
MAX_BODY_BYTES = 4 * 1024 * 1024
_JSON = "application/json;odata=minimalmetadata"


@dataclass
class Call:
    """One request as an operation sees it."""

    service: BatchService
    method: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    fault: Fault | None = None

    def json(self) -> Any:
        """The body as JSON; `{}` for an empty body (clients send `Content-Length: 0`)."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise EmulatorError(
                "InvalidRequestBody", f"The request body is not valid JSON: {exc}"
            ) from None

    def conditions(self, *, keys: tuple[str, ...] | None = None) -> Conditions:
        """The conditional headers of the request (`keys` limits them)."""

        def date(name: str) -> datetime | None:
            value = self.headers.get(name)
            if value is None or (keys is not None and name not in keys):
                return None
            try:
                moment = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise EmulatorError(
                    "InvalidHeaderValue",
                    f"The value of the {name} header is not an RFC 1123 date.",
                    values=(("HeaderName", name), ("HeaderValue", value)),
                ) from None
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

        def tag(name: str) -> str | None:
            if keys is not None and name not in keys:
                return None
            return self.headers.get(name)

        return Conditions(
            if_match=tag("if-match"),
            if_none_match=tag("if-none-match"),
            if_modified_since=date("if-modified-since"),
            if_unmodified_since=date("if-unmodified-since"),
        )

    def page_link(self, continuation: str | None) -> str | None:
        """`odata.nextLink` for the page after this one: this URL with `$skiptoken`."""
        if continuation is None:
            return None
        query = {k: v for k, v in self.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = continuation
        path = self.params["__path__"]
        return f"{self.base_url}{path}?{urlencode(query, safe='$,/:')}"


@dataclass
class Reply:
    """What an operation answers: status, JSON (or raw bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = _JSON


def entity_headers(entity: dict[str, Any]) -> dict[str, str]:
    """`ETag` (quoted) and `Last-Modified` (RFC 1123) of a job, task or pool."""
    modified = datetime.fromisoformat(entity["lastModified"][:19] + "+00:00")
    return {
        "ETag": f'"{entity["eTag"]}"',
        "Last-Modified": format_datetime(modified, usegmt=True),
    }


_DROP = "batchflow.drop"


class _Dropped(Response):
    """A fault: no answer at all; `Dropping` closes the connection (a client sees the
    server disconnect without a response)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_DROP].append(True)


class Dropping:
    """ASGI middleware around the application that aborts the connection of a request
    answered with `_Dropped`. It reaches the socket through uvicorn's `send` (a method
    of its request cycle, which holds the transport); elsewhere it answers 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        box: list[bool] = []
        scope[_DROP] = box
        await self.app(scope, receive, send)
        if box:
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                transport.abort()
            else:
                await Response(b"", 500)(scope, receive, send)


Operation = Callable[[Call], Reply]


class Emulator:
    """The request cycle shared by every route."""

    def __init__(
        self,
        service: BatchService,
        account: Account,
        *,
        tls: bool = False,
        faults: FaultPlan | None = None,
    ) -> None:
        self.service = service
        self.account = account
        self.tls = tls
        self.faults = faults

    def route(
        self, path: str, methods: list[str], operation: Operation, *, collection: bool = False
    ) -> Route:
        """A Starlette route that runs `operation` through the request cycle."""

        async def endpoint(request: Request) -> Response:
            return await self.handle(request, path, operation, collection)

        return Route(path, endpoint, methods=methods)

    async def handle(
        self, request: Request, template: str, operation: Operation, collection: bool
    ) -> Response:
        request_id = str(uuid.uuid4())
        headers = {k.lower(): v for k, v in request.headers.items()}
        base_url = f"{request.url.scheme}://{headers.get('host', request.url.netloc)}"
        extra = {"request-id": request_id, "DataServiceVersion": "3.0"}
        if "client-request-id" in headers:
            extra["client-request-id"] = headers["client-request-id"]
        scope = request.scope
        try:
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            raw_path = raw_path.split("?", 1)[0]
            query_string = scope.get("query_string", b"").decode("latin-1")
            authenticate(
                self.account, request.method, headers, raw_path, query_string, tls=self.tls
            )
            fault = self.faults.draw(collection) if self.faults else None
            if fault is not None and fault.partial is None:
                return self._fault(fault, base_url, extra)
            body = await request.body()
            limit = MAX_COLLECTION_BYTES if collection else MAX_BODY_BYTES
            if len(body) > limit:
                raise EmulatorError(
                    "RequestBodyTooLarge",
                    f"The request body is too large ({len(body):,} bytes; at most {limit:,}).",
                )
            params = dict(request.path_params)
            params["__path__"] = scope["path"]
            call = Call(
                service=self.service,
                method=request.method,
                params=params,
                query=dict(parse_qsl(query_string, keep_blank_values=True)),
                headers=headers,
                body=body,
                base_url=base_url,
                fault=fault,
            )
            reply = await run_in_threadpool(operation, call)
            if fault is not None:  # it landed after the work: the client cannot tell
                return self._fault(fault, base_url, extra)
        except BackendError as exc:
            return self._error(
                base_url, request_id, exc.code, exc.message, exc.values, extra, request.method
            )
        except EmulatorError as exc:
            return self._error(
                base_url,
                request_id,
                exc.code,
                exc.message,
                exc.values,
                extra,
                request.method,
                exc.status,
            )
        except StateError as exc:
            _LOG.error("state store: %s", exc)
            return self._error(
                base_url, request_id, "InternalError", str(exc), (), extra, request.method
            )
        headers_out = {**extra, **reply.headers}
        if reply.raw is not None:
            return Response(
                reply.raw, reply.status, headers=headers_out, media_type=reply.content_type
            )
        if reply.body is None:
            return Response(b"", reply.status, headers=headers_out)
        payload = to_json(reply.body)
        return Response(payload, reply.status, headers=headers_out, media_type=_JSON)

    def _fault(self, fault: Fault, base_url: str, extra: dict[str, str]) -> Response:
        if fault.dropped:
            return _Dropped()
        assert self.faults is not None
        wait = self.faults.retry_after
        headers = {
            **extra,
            "Retry-After": str(max(0, round(wait))),
            "retry-after-ms": str(int(wait * 1000)),
        }
        code = "TooManyRequests" if fault.status == 429 else "ServerBusy"
        body = error_body(
            base_url, code, "The server is busy (an injected fault).", extra["request-id"]
        )
        return Response(body, fault.status, headers=headers, media_type=_JSON)

    def _error(
        self,
        base_url: str,
        request_id: str,
        code: str,
        message: str,
        values: tuple[tuple[str, str], ...],
        extra: dict[str, str],
        method: str,
        status: int | None = None,
    ) -> Response:
        from batchflow.emulator.errors import status_of
        from batchflow.redact import redact

        status = status or status_of(code)
        if status == 304 or method == "HEAD":
            return Response(b"", status, headers=extra)
        body = error_body(base_url, code, redact(message), request_id, values)
        return Response(body, status, headers=extra, media_type=_JSON)


def build_app(
    service: BatchService,
    account: Account,
    *,
    tls: bool = False,
    faults: FaultPlan | None = None,
) -> Any:
    """The ASGI application of one emulated account over `service`."""
    from batchflow.emulator.routes import routes

    emulator = Emulator(service, account, tls=tls, faults=faults)
    app = Starlette(routes=routes(emulator))
    return Dropping(app) if faults is not None else app
