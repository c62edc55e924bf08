"""Deterministic fault injection: throttling, server errors and dropped connections.

`--faults 'rate=0.1,codes=429:503,reset=0.02,seed=7'` makes about 10 % of requests
answer with one of the status codes (with `Retry-After`, as Batch throttles) and 2 %
lose their connection without an answer. The draws come from one generator
seeded with `seed`, so a client that sends the same requests in the same order meets the
same faults.

A fault lands before the request is carried out (nothing happened), except that a 5xx
or a dropped connection on `addtaskcollection` may land after some of its tasks were
added (as on Batch, where the client cannot tell): `partial` says how many of them.

    >>> plan = FaultPlan.parse("rate=0.5,codes=503,seed=1")
    >>> [f.status if f else None for f in (plan.draw(False) for _ in range(4))]
    [503, 503, None, 503]
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

__all__ = ["Fault", "FaultPlan"]

_KEYS = ("rate", "codes", "reset", "seed", "retry_after")


@dataclass(frozen=True)
class Fault:
    """One injected fault: a status (with Retry-After) or a dropped connection (`status`
    0); for a collection of tasks, how many of them were added first (None: none)."""

    status: int
    partial: float | None = None

    @property
    def dropped(self) -> bool:
        """The connection is closed without an answer."""
        return self.status == 0


class FaultPlan:
    """The faults one emulator injects, drawn from a seeded generator."""

    def __init__(
        self,
        *,
        rate: float = 0.0,
        codes: tuple[int, ...] = (429, 503),
        reset: float = 0.0,
        seed: int = 0,
        retry_after: float = 1.0,
    ) -> None:
        if not 0 <= rate <= 1 or not 0 <= reset <= 1 or rate + reset > 1:
            raise ValueError("rate and reset are shares of requests: 0 to 1, together at most 1")
        for code in codes:
            if not 400 <= code <= 599:
                raise ValueError(f"codes: {code} is not an HTTP error status (400-599)")
        if rate and not codes:
            raise ValueError("codes: give at least one status, e.g. codes=429:503")
        if retry_after < 0:
            raise ValueError("retry_after: seconds, 0 or more")
        self.rate = rate
        self.codes = codes
        self.reset = reset
        self.seed = seed
        self.retry_after = retry_after
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """`rate=0.1,codes=429:503,reset=0.02,seed=7,retry_after=1`; ValueError naming
        the bad part."""
        values: dict[str, str] = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in _KEYS:
                raise ValueError(
                    f"'{part.strip()}' is not one of {', '.join(k + '=...' for k in _KEYS)}"
                )
            values[key] = value.strip()
        try:
            return cls(
                rate=float(values.get("rate", 0)),
                codes=tuple(int(c) for c in values.get("codes", "429:503").split(":") if c),
                reset=float(values.get("reset", 0)),
                seed=int(values.get("seed", 0)),
                retry_after=float(values.get("retry_after", 1)),
            )
        except ValueError as exc:
            if "could not convert" in str(exc) or "invalid literal" in str(exc):
                raise ValueError(f"'{spec}': a value is not a number") from None
            raise

    def draw(self, collection: bool) -> Fault | None:
        """The fault for the next request, if any (`collection`: an addtaskcollection)."""
        with self._lock:
            roll = self._random.random()
            pick = self._random.random()
            after = self._random.random()
        if roll < self.reset:
            return Fault(0, after if collection and pick < 0.5 else None)
        if roll < self.reset + self.rate:
            status = self.codes[int(pick * len(self.codes)) % len(self.codes)]
            landed = collection and status >= 500 and after < 0.5
            return Fault(status, after * 2 if landed else None)
        return None
