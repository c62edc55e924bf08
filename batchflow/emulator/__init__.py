"""`batchflow emulator`: an offline Azure Batch data-plane server for the real SDK and `az`.

A thin HTTP adapter over the local Batch service (backends/local/service.py): request
parsing, authentication, OData and wire details live here; every rule of Batch lives in
the service. `serve()` runs one in the background for tests:

    from batchflow.emulator import serve

    with serve() as batch:
        batch.client.create_job(...)
"""

from __future__ import annotations

from batchflow.emulator.server import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, EmulatorHandle, serve

__all__ = ["DEV_ACCOUNT_KEY", "DEV_ACCOUNT_NAME", "EmulatorHandle", "serve"]
