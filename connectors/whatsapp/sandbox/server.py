"""Serve the sandbox with uvicorn in a background thread, for tests, benchmarks and the main job."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from connectors.whatsapp.sandbox.app import TRANSPORT_SCOPE_KEY, SandboxApp
from connectors.whatsapp.sandbox.config import SandboxConfig
from connectors.whatsapp.sandbox.state import SandboxState

_START_DEADLINE_S = 10.0
_STOP_DEADLINE_S = 10.0


class _TransportExposingProtocol(H11Protocol):
    """uvicorn's h11 protocol, also putting the connection's transport in the ASGI scope.

    The "reset" fault needs it: ASGI has no way to drop a connection without answering, and an
    app that raises gets a 500 from uvicorn instead.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[TRANSPORT_SCOPE_KEY] = self.transport
            await inner(scope, receive, send)

        self.app = app


def uvicorn_config(app: SandboxApp, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for the sandbox: quiet (no access log), lifespan on, reset-capable."""
    return uvicorn.Config(
        app.asgi,
        host=host,
        port=port,
        http=_TransportExposingProtocol,
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        # uvicorn's own logging config would replace the host process's handlers (Prefect's
        # API log handler among them) and deadlock on its flush.
        log_config=None,
        timeout_graceful_shutdown=5,
    )


class RunningSandbox:
    """A sandbox serving in a daemon thread; `.url`, `.state`, `.config`, `.stop()`."""

    def __init__(self, app: SandboxApp, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._app = app
        self._server = server
        self._thread = thread
        self.state: SandboxState = app.state
        self.config: SandboxConfig = app.config
        sockets = server.servers[0].sockets
        host, port = sockets[0].getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving gracefully (hanging requests are released) and join the thread."""
        if not self._thread.is_alive():
            return
        self._app.begin_shutdown()
        self._server.should_exit = True
        self._thread.join(_STOP_DEADLINE_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_DEADLINE_S)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSandbox(url={self.url!r})"


def start_sandbox(
    config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start a sandbox on `host:port` (0: a free port) and return once it accepts requests."""
    app = SandboxApp(SandboxState(config or SandboxConfig()))
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port))
    thread = threading.Thread(target=server.run, name=f"wa-sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_DEADLINE_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"sandbox failed to start on {host}:{port} (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox did not start on {host}:{port} within 10 s")
        time.sleep(0.005)
    return RunningSandbox(app, server, thread)
