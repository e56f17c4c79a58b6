"""The webhook POSTs on bare ASGI: their headers, their bounded body, their fixed JSON answers.

Starlette's request, response and middleware layers cost ~40 us of CPU per request here, more
than parsing a body; the POST routes, thousands per second, do without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.types import Receive, Scope, Send


class TooLargeError(Exception):
    """The body is over the limit (its declared length or the bytes streamed so far)."""


class DisconnectedError(Exception):
    """The client went away before its body was read."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A fixed JSON answer: status, body and extra headers, encoded once."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, status: int, body: bytes, **extra: str) -> Answer:
        headers = [(b"content-type", b"application/json")]
        headers += [
            (name.replace("_", "-").lower().encode(), v.encode()) for name, v in extra.items()
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        return cls(status, body, tuple(headers))

    async def send(self, send: Send) -> None:
        """Send this answer as the whole response."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


OK: Final = Answer.of(200, b'{"status":"ok"}')
UNAUTHORIZED: Final = Answer.of(401, b'{"error":"unauthorized"}')
UNAUTHORIZED_BASIC: Final = Answer.of(
    401, b'{"error":"unauthorized"}', WWW_Authenticate='Basic realm="webhooks"'
)
BAD_SIGNATURE: Final = Answer.of(401, b'{"error":"bad_signature"}')
TOO_LARGE: Final = Answer.of(413, b'{"error":"too_large"}')
BAD_PAYLOAD: Final = Answer.of(400, b'{"error":"bad_payload"}')
WRITE_FAILED: Final = Answer.of(500, b'{"error":"write_failed"}')
BUSY: Final = Answer.of(503, b'{"error":"busy"}', Retry_After="1")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), as Starlette decodes it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def route_path(scope: Scope) -> str:
    """The request's path below the app's root path (as Starlette's router matches it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body; TooLargeError as soon as it is known to exceed `limit` bytes."""
    declared = header(scope, b"content-length") or ""
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLargeError
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise DisconnectedError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
