"""Pause the cyclic garbage collector around bulk work that creates no cycles.

Validating or exporting a million tasks allocates millions of small tuples and lists;
the collector would scan the whole heap again and again for cycles that cannot exist.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic GC inside the block, restoring its previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
