"""Azure Batch through the azure-batch SDK: the `Backend` protocol on a Batch account.

- `client`: the SDK's `BatchClient` for a target (Shared Key when a key is given, else
  Microsoft Entra ID through `DefaultAzureCredential`), and Batch's errors turned into
  `BackendError`s with nothing secret in them;
- `submit`: a flow's job and tasks added exactly once (collections of 100 under 1 MB,
  several in flight, per-task retries, a definition hash carried by every task);
- `backend`: `AzureBackend`, what the CLI's commands call.

The SDK is imported only when a backend is built, so `batchflow --help` never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchflow.backends.azure.backend import AzureBackend

__all__ = ["AzureBackend"]


def __getattr__(name: str) -> Any:
    if name == "AzureBackend":
        from batchflow.backends.azure.backend import AzureBackend

        return AzureBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
