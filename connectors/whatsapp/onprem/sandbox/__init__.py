"""A local emulation of the WhatsApp v1 API (whatsapp-api.md) for tests, benchmarks and demo runs.

Start one with `start_sandbox(SandboxConfig(...))`, or
`python -m connectors.whatsapp.onprem.sandbox`.
"""

from connectors.whatsapp.onprem.sandbox.app import SandboxApp, create_app
from connectors.whatsapp.onprem.sandbox.config import (
    DEFAULT_TEMPLATES,
    FaultKind,
    SandboxConfig,
    V1Template,
)
from connectors.whatsapp.onprem.sandbox.server import RunningSandbox, start_sandbox
from connectors.whatsapp.onprem.sandbox.state import RecordedRequest, SandboxState, SentMessage

__all__ = [
    "DEFAULT_TEMPLATES",
    "FaultKind",
    "RecordedRequest",
    "RunningSandbox",
    "SandboxApp",
    "SandboxConfig",
    "SandboxState",
    "SentMessage",
    "V1Template",
    "create_app",
    "start_sandbox",
]
