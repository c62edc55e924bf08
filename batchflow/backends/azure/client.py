"""The SDK's `BatchClient` for a target, and Batch's errors as `BackendError`s.

Authentication: Shared Key when the target carries a key (`AZURE_BATCH_ACCESS_KEY`),
otherwise Microsoft Entra ID through azure-identity's `DefaultAzureCredential` (a CD
pipeline's workload identity, a managed identity, `az login`, ...). azure-core's retry
policy handles throttling (429/503 with `Retry-After`) and connection errors of reads;
`submit` adds its own per-task retries for adds.

Nothing secret reaches a message: keys and tokens are never formatted, and the text of
every error from the service or the transport passes through `redact`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from batchflow.exceptions import BackendError
from batchflow.redact import redact

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchflow.stack import AzureTarget

__all__ = ["batch_client", "errors"]

#: What a connection or transport failure is called in a `BackendError`.
UNREACHABLE = "ServiceUnavailable"


def batch_client(target: AzureTarget, credential: Any = None, **options: Any) -> BatchClient:
    """A `BatchClient` on the target's endpoint: with `credential` (a token credential)
    when given, else the target's Shared Key, else `DefaultAzureCredential`."""
    import logging

    from azure.batch import BatchClient

    # The SDK logs (with a traceback) every error body it cannot parse, such as a HEAD
    # request's empty one; what matters reaches the user as a `BackendError`.
    azure_log = logging.getLogger("azure")
    if not azure_log.handlers:
        azure_log.addHandler(logging.NullHandler())
        azure_log.propagate = False
    # azure-core retries a throttled or failed request 3 times by default; a Batch account
    # under load (or a monitoring loop that runs for hours) deserves more before an error.
    options.setdefault("retry_total", 10)
    options.setdefault("retry_status", 8)
    options.setdefault("retry_connect", 5)
    options.setdefault("retry_read", 5)
    if credential is not None:
        return BatchClient(target.endpoint, credential, **options)
    if target.account_key:
        from azure.core.credentials import AzureNamedKeyCredential

        credential = AzureNamedKeyCredential(target.account_name, target.account_key)
    else:
        if target.endpoint.lower().startswith("http://"):
            raise BackendError(
                f"{target.endpoint} is plain http, and Microsoft Entra ID tokens are only "
                "sent over https: give the account's Shared Key in AZURE_BATCH_ACCESS_KEY "
                "(an emulator's key), or use its https endpoint",
                code="AuthenticationFailed",
            )
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BatchClient(target.endpoint, credential, **options)


def _code(exc: Any) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    response = getattr(exc, "response", None)
    if response is not None:  # a streamed download's error body is not read yet
        import json

        with contextlib.suppress(Exception):
            response.read()
        with contextlib.suppress(Exception):
            return str(json.loads(response.text())["code"])
    return None


def _message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None)
    response = getattr(exc, "response", None)
    if not text and response is not None:
        import json

        with contextlib.suppress(Exception):
            text = json.loads(response.text())["message"]["value"]
    text = text or getattr(exc, "message", None) or str(exc)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return redact(text)


@contextlib.contextmanager
def errors(
    endpoint: str, *, job_id: str | None = None, task_id: str | None = None
) -> Iterator[None]:
    """Turn what the SDK, azure-identity and the transport raise into `BackendError`s."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ClientAuthenticationError as exc:
        status = getattr(exc, "status_code", None)
        if status is not None:  # the service refused the credential (403)
            raise BackendError(
                f"the Batch account at {endpoint} refused the credential: {_message(exc)}",
                code=_code(exc) or "AuthenticationFailed",
                job_id=job_id,
                task_id=task_id,
            ) from None
        raise BackendError(
            "no Microsoft Entra ID credential was found for the Batch account "
            f"({_message(exc)}); sign in (az login), use a workload or managed identity, or "
            "give a Shared Key in AZURE_BATCH_ACCESS_KEY",
            code="AuthenticationFailed",
            job_id=job_id,
            task_id=task_id,
        ) from None
    except HttpResponseError as exc:
        code = _code(exc) or f"HTTP{exc.status_code}"
        if exc.status_code == 403 and code in ("AuthenticationFailed", "HTTP403"):
            message = f"the Batch account at {endpoint} refused the credential: {_message(exc)}"
        else:
            message = _message(exc)
        raise BackendError(message, code=code, job_id=job_id, task_id=task_id) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise BackendError(
            f"cannot reach the Batch account at {endpoint}: {_message(exc)}",
            code=UNREACHABLE,
            job_id=job_id,
            task_id=task_id,
        ) from None
