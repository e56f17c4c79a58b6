"""uvicorn serving an ASGI app in a daemon thread on a (free) local port, for tests and jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import uvicorn

_START_DEADLINE_S = 10.0
_STOP_DEADLINE_S = 10.0


class ServerThread:
    """A started uvicorn server and its thread; `.host`, `.port`, `.url`, `.stop()`."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.url = f"http://{host}:{port}"

    @property
    def alive(self) -> bool:
        """True while the server thread runs."""
        return self._thread.is_alive()

    def stop(self, *, before: Callable[[], None] | None = None) -> None:
        """Stop gracefully (in-flight requests finish, lifespan shutdown runs), then join."""
        if not self._thread.is_alive():
            return
        if before is not None:
            before()
        self._server.should_exit = True
        self._thread.join(_STOP_DEADLINE_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_DEADLINE_S)


def quiet_config(app: Any, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn settings for an in-process server: no access log, lifespan on, and the host
    process's logging left alone (uvicorn's own log config would replace its handlers, Prefect's
    API log handler among them, and deadlock on their flush)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        log_config=None,
        **options,
    )


def serve_in_thread(config: uvicorn.Config, *, name: str) -> ServerThread:
    """Start `config`'s server in a daemon thread; return once it accepts connections."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_DEADLINE_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{name} failed to start on {config.host}:{config.port} (see log)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{name} did not start on {config.host}:{config.port} in 10 s")
        time.sleep(0.005)
    return ServerThread(server, thread)


class RunningServer:
    """Base of the in-thread servers handed to callers: `.url`, `.stop()`, `with` support."""

    def __init__(self, serving: ServerThread) -> None:
        self._serving = serving
        self.host: str = serving.host
        self.port: int = serving.port
        self.url: str = serving.url

    def stop(self) -> None:
        """Stop gracefully and join the server's thread."""
        self._serving.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"
