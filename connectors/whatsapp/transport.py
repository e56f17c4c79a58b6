"""The client's HTTP transport: several small connection pools used in turn.

httpcore 1.0.x scans its whole pool on every request and release (encode/httpcore#1035), so the
CPU per request grows with the pool's size; pools of at most eight connections keep it flat.
"""

from __future__ import annotations

import itertools
import math

import httpx

POOL_SIZE = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """Hands each request to the next of several `AsyncHTTPTransport` pools."""

    def __init__(self, *, max_connections: int, verify: bool = True) -> None:
        shards = max(1, math.ceil(max_connections / POOL_SIZE))
        per_pool = math.ceil(max_connections / shards)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._pools = [
            httpx.AsyncHTTPTransport(limits=limits, verify=verify) for _ in range(shards)
        ]
        self._next = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request through the next pool."""
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools:
            await pool.aclose()
