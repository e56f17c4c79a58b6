"""The client's HTTP transport: aiohttp's connection pool under httpx's API.

httpx stays the API the clients program against; aiohttp does the HTTP/1.1 work for about half the
CPU per request of httpcore. Its errors become httpx's, keeping what the senders rely on: an
error raised before the request was written (`httpx.ConnectError`, `httpx.ConnectTimeout`) is
told apart from one raised after, whose outcome is unknown (`ReadError`, `ReadTimeout`,
`RemoteProtocolError`). httpx-aiohttp's own mapping loses that (a server that drops the
connection after reading the request would read as a connect timeout, and be sent again).

aiohttp has no write timeout: a request is a few hundred bytes, written to the socket's buffer at
once. The pool timeout bounds the wait for a connection and its connecting together.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx

_KEEPALIVE_S = httpx.Limits().keepalive_expiry


@functools.cache
def _verified_context() -> ssl.SSLContext:
    """httpx's verifying TLS context (certifi's CA store), loaded once per process."""
    return httpx.create_ssl_context(verify=True)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise aiohttp's errors as httpx's, written or not as the phase they happened in says."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # waiting for a connection, or connecting
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS: before any byte was sent
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timeout", request=request) from exc
    except (aiohttp.ClientError, OSError) as exc:  # written, or maybe: the outcome is unknown
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests over one aiohttp session of at most `max_connections` connections."""

    def __init__(self, *, max_connections: int, verify: bool = True) -> None:
        self._max_connections = max_connections
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop (aiohttp binds a session to its loop).
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=_KEEPALIVE_S,
            ssl=_verified_context() if self._verify else False,
        )
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request and read its whole answer (the API's answers are small)."""
        session = self._session or self._open()
        body = request.content if isinstance(request.stream, httpx.ByteStream) else None
        if body is None:
            body = await request.aread()
        url = request.url
        if url.userinfo:  # httpx sent it as the Authorization header; no request line carries it
            url = url.copy_with(userinfo=b"")
        with _as_httpx_errors(request):
            async with session.request(
                request.method,
                str(url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(request),
            ) as answer:
                content = await answer.read()
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
