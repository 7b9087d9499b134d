"""A budget for work in flight: at most `capacity` pixels of photos are being decoded, colorized and encoded at
once, so the server's memory stays under a ceiling whatever clients send (a 38 KB PNG can hold 40 megapixels).

A request takes its photos' pixels from the budget before it decodes them (the count comes from the image
header) and gives them back when its answer is encoded; while the budget is spent it waits its turn, and
after `timeout` seconds it gets 503 with Retry-After. A photo larger than the whole budget is refused by the
server's --max-pixels, which is never above the budget.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager


class BudgetTimeout(Exception):
    """The pixels did not free up within the timeout."""


class PixelBudget:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("the pixel budget must be at least 1")
        self.capacity, self.used, self.peak = capacity, 0, 0
        self._freed: asyncio.Condition | None = None  # made in the server's event loop, on first use

    @asynccontextmanager
    async def hold(self, pixels: int, timeout: float):
        """Hold `pixels` of the budget for the body of the `async with`; BudgetTimeout after `timeout` s."""
        if pixels > self.capacity:
            raise ValueError(f"{pixels:,} pixels can never fit a budget of {self.capacity:,}")
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            try:
                await asyncio.wait_for(self._freed.wait_for(lambda: self.used + pixels <= self.capacity), timeout)
            except asyncio.TimeoutError:
                raise BudgetTimeout() from None
            self.used += pixels
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            async with self._freed:
                self.used -= pixels
                self._freed.notify_all()
