"""A small in-memory sliding-window rate limiter for the public verification pages."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` hits per client in any ``window`` seconds.

    Per process: with several replicas a client gets up to ``limit`` per replica, which is
    enough to stop enumeration of certificate numbers. Memory is bounded by ``max_clients``:
    the least recently seen clients are forgotten first.
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, client: str) -> int | None:
        """Count a request; None when allowed, else the whole seconds to wait (Retry-After)."""
        now = self._clock()
        hits = self._hits.get(client)
        if hits is None:
            hits = self._hits[client] = deque()
        self._hits.move_to_end(client)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        while len(self._hits) > self.max_clients:
            self._hits.popitem(last=False)
        return None

    @property
    def tracked_clients(self) -> int:
        return len(self._hits)
