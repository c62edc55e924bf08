"""Blob containers: the auto-storage account, transfer settings, and container clients.

`azure.storage.blob` is imported only when a container is actually used, so a task
without container resource files or output files never pays for it (~0.4 s to import).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from batchflow.envvars import STORAGE_CONNECTION_VARIABLES
from batchflow.redact import redact

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

__all__ = ["AutoStorage", "ContainerClients", "TransferPolicy", "public_url", "shown_url"]

#: Environment variables naming the local engine's auto-storage account, in order.
STORAGE_ENV_VARS = STORAGE_CONNECTION_VARIABLES


@dataclass(frozen=True)
class TransferPolicy:
    """How patient a download or upload is.

    `timeout` is the seconds one connection may stay silent (connect or read) before the
    transfer counts as timed out; `retries` is how many more times a transient failure
    (connection error, timeout, HTTP 408/429/5xx) is retried; `backoff` is the wait before
    the first retry in seconds, doubled for each further one.
    """

    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0


@dataclass(frozen=True)
class AutoStorage:
    """The storage account that `autoStorageContainerName` refers to (locally e.g. an
    Azurite account).

    Give a `connection_string`, or an `account_url` (`https://acct.blob.core.windows.net`)
    with an optional `credential` (an account key, a SAS token, or an azure-identity
    credential). The secrets are kept out of `repr()`.

    >>> AutoStorage.from_env({"BATCHFLOW_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    AutoStorage(account_url=None)
    """

    connection_string: str | None = field(default=None, repr=False)
    account_url: str | None = None
    credential: object | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AutoStorage | None:
        """The account named by `BATCHFLOW_STORAGE_CONNECTION_STRING`, else
        `AZURE_STORAGE_CONNECTION_STRING`; `None` when neither is set."""
        environ = os.environ if environ is None else environ
        for name in STORAGE_ENV_VARS:
            value = environ.get(name, "").strip()
            if value:
                return cls(connection_string=value)
        return None

    def container_client(self, name: str, policy: TransferPolicy) -> ContainerClient:
        """A client for container `name` of this account."""
        from azure.storage.blob import BlobServiceClient

        options = _client_options(policy)
        if self.connection_string:
            service = BlobServiceClient.from_connection_string(self.connection_string, **options)
        elif self.account_url:
            credential: Any = self.credential
            service = BlobServiceClient(self.account_url, credential=credential, **options)
        else:
            raise ValueError("AutoStorage needs a connection_string or an account_url")
        return service.get_container_client(name)

    def blob_endpoint(self) -> str:
        """The account's blob endpoint URL (`https://acct.blob.core.windows.net`), no slash."""
        if self.account_url:
            return self.account_url.rstrip("/")
        settings = dict(
            part.split("=", 1) for part in (self.connection_string or "").split(";") if "=" in part
        )
        if "BlobEndpoint" in settings:
            return settings["BlobEndpoint"].rstrip("/")
        if settings.get("UseDevelopmentStorage", "").lower() == "true":
            return "http://127.0.0.1:10000/devstoreaccount1"
        protocol = settings.get("DefaultEndpointsProtocol", "https")
        suffix = settings.get("EndpointSuffix", "core.windows.net")
        return f"{protocol}://{settings.get('AccountName', '')}.blob.{suffix}"

    def owns(self, container_url: str) -> bool:
        """Whether `container_url` is a container of this account (so its credential applies,
        as a managed identity would on a node)."""
        endpoint = self.blob_endpoint().lower()
        return container_url.split("?", 1)[0].lower().startswith(endpoint + "/")


def public_url(url: str) -> str:
    """`url` without its query string (where a SAS token lives) or user info."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def shown_url(url: str) -> str:
    """`url` as it may be shown: SAS signatures as `sig=***`, a password in it as `***`."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
    return redact(url)


def _client_options(policy: TransferPolicy) -> dict[str, Any]:
    return {
        "retry_policy": _doubling_retry()(
            policy.backoff, retry_total=policy.retries, random_jitter_range=0
        ),
        "connection_timeout": policy.timeout,
        "read_timeout": policy.timeout,
    }


@functools.cache
def _doubling_retry() -> type[Any]:
    """The storage SDK's retry policy with the same back-off as plain URLs: `backoff`
    seconds, doubled for each further retry (the SDK's own adds `3 ** n`)."""
    from azure.storage.blob import ExponentialRetry

    class DoublingRetry(ExponentialRetry):
        def __init__(self, backoff: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.backoff = backoff

        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return float(self.backoff * 2 ** settings["count"])

    return DoublingRetry


class ContainerClients:
    """One client per container within a call (a connection pool per container URL).

    A `containerUrl` carrying a SAS token is used as is. One without a token that points at
    the auto-storage account uses that account's credential, the way `identityReference`
    lends a managed identity on a node; any other URL is used anonymously (a public
    container).
    """

    def __init__(self, policy: TransferPolicy, auto_storage: AutoStorage | None) -> None:
        self._policy = policy
        self._auto_storage = auto_storage
        self._clients: dict[str, ContainerClient] = {}

    def by_url(self, container_url: str) -> ContainerClient:
        """The client for `container_url` (SAS in its query string, if any)."""
        client = self._clients.get(container_url)
        if client is None:
            from azure.storage.blob import ContainerClient

            auto = self._auto_storage
            if auto is not None and not urlsplit(container_url).query and auto.owns(container_url):
                name = container_url.rstrip("/").rsplit("/", 1)[-1]
                client = auto.container_client(name, self._policy)
            else:
                client = ContainerClient.from_container_url(
                    container_url, **_client_options(self._policy)
                )
            self._clients[container_url] = client
        return client

    def by_name(self, name: str, auto_storage: AutoStorage) -> ContainerClient:
        """The client for container `name` of the auto-storage account."""
        key = f"auto:{name}"
        client = self._clients.get(key)
        if client is None:
            client = auto_storage.container_client(name, self._policy)
            self._clients[key] = client
        return client

    def close(self) -> None:
        """Close every client's connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an azure-core error, if it carries one."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def storage_code(exc: BaseException) -> str:
    """The storage service's error code (`ContainerNotFound`, ...), or ''."""
    code = getattr(exc, "error_code", None)
    return str(code.value if hasattr(code, "value") else code) if code else ""


def is_timeout(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a timeout."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return True
        current = current.__cause__ or current.__context__
    return False
