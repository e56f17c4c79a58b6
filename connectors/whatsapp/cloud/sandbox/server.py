"""Serve the Cloud sandbox with uvicorn in a background thread, for tests, benchmarks and demos."""

from __future__ import annotations

from connectors.http_server import RunningServer, ServerThread, quiet_config, serve_in_thread
from connectors.whatsapp.cloud.sandbox.app import CloudSandboxApp
from connectors.whatsapp.cloud.sandbox.config import CloudSandboxConfig
from connectors.whatsapp.cloud.sandbox.state import CloudSandboxState

# The v1 sandbox's h11 protocol exposes the connection's transport, which the `reset` fault needs.
from connectors.whatsapp.onprem.sandbox.server import _TransportExposingProtocol as ResetCapable


class RunningCloudSandbox(RunningServer):
    """A Cloud sandbox serving in a daemon thread; `.url`, `.state`, `.config`, `.stop()`."""

    def __init__(self, app: CloudSandboxApp, serving: ServerThread) -> None:
        super().__init__(serving)
        self.app = app
        self.state: CloudSandboxState = app.state
        self.config: CloudSandboxConfig = app.config

    @property
    def graph_url(self) -> str:
        """The base URL with the pinned version, e.g. `http://127.0.0.1:8080/v23.0`."""
        return f"{self.url}/{self.config.graph_version}"

    def stop(self) -> None:
        """Stop serving gracefully (hanging requests are released) and join the thread."""
        self._serving.stop(before=self.app.begin_shutdown)


def start_cloud_sandbox(
    config: CloudSandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningCloudSandbox:
    """Start a Cloud sandbox on `host:port` (0: a free port); returns once it accepts requests."""
    app = CloudSandboxApp(CloudSandboxState(config or CloudSandboxConfig()))
    uvicorn_config = quiet_config(
        app.asgi, host=host, port=port, http=ResetCapable, timeout_graceful_shutdown=5
    )
    serving = serve_in_thread(uvicorn_config, name=f"wa-cloud-sandbox-{port}")
    return RunningCloudSandbox(app, serving)
