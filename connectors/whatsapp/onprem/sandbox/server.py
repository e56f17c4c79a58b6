"""Serve the sandbox with uvicorn in a background thread, for tests, benchmarks and the main job."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from connectors.http_server import RunningServer, ServerThread, quiet_config, serve_in_thread
from connectors.whatsapp.onprem.sandbox.app import TRANSPORT_SCOPE_KEY, SandboxApp
from connectors.whatsapp.onprem.sandbox.config import SandboxConfig
from connectors.whatsapp.onprem.sandbox.state import SandboxState


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
    """uvicorn settings for the sandbox: quiet, and reset-capable (see the protocol above)."""
    return quiet_config(
        app.asgi, host=host, port=port, http=_TransportExposingProtocol, timeout_graceful_shutdown=5
    )


class RunningSandbox(RunningServer):
    """A sandbox serving in a daemon thread; `.url`, `.state`, `.config`, `.stop()`."""

    def __init__(self, app: SandboxApp, serving: ServerThread) -> None:
        super().__init__(serving)
        self._app = app
        self.state: SandboxState = app.state
        self.config: SandboxConfig = app.config

    def stop(self) -> None:
        """Stop serving gracefully (hanging requests are released) and join the thread."""
        self._serving.stop(before=self._app.begin_shutdown)


def start_sandbox(
    config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start a sandbox on `host:port` (0: a free port) and return once it accepts requests."""
    app = SandboxApp(SandboxState(config or SandboxConfig()))
    serving = serve_in_thread(uvicorn_config(app, host=host, port=port), name=f"wa-sandbox-{port}")
    return RunningSandbox(app, serving)
