"""A local emulation of the WhatsApp Cloud API (cloud-api.md) for tests, benchmarks and demo runs.

Start one with `start_cloud_sandbox(CloudSandboxConfig(...))`, or
`python -m connectors.whatsapp.cloud.sandbox` (also `python -m connectors.whatsapp.sandbox
--api cloud`).

```
cloud/sandbox/
├── config.py     CloudSandboxConfig: token, numbers, templates, limits, faults, webhooks
├── templates.py  the template registry (header, body, buttons) and its paged listing
├── objects.py    the phone number's facts and the WABA (`GET /{version}/{id}`)
├── messages.py   validation of a template send, and the codes chosen where Meta is silent
├── rules.py      the number rule: what happens to an accepted send; the BSUID of a number
├── errors.py     Graph error bodies and the code -> HTTP status table
├── faults.py     scripted and random faults per endpoint: the v1 kinds, `code:<n>` any code
├── state.py      the record of requests, sends, pushes and counters
├── webhooks.py   signed status, user_preferences and inbound pushes
├── admin.py      the /sandbox/ routes
├── app.py        the Starlette app: auth, faults, limits, endpoints
└── server.py     start_cloud_sandbox: uvicorn in a thread
```
"""

from connectors.whatsapp.cloud.sandbox.app import CloudSandboxApp, create_cloud_app
from connectors.whatsapp.cloud.sandbox.config import CloudSandboxConfig
from connectors.whatsapp.cloud.sandbox.rules import Outcome, bsuid_of, outcome
from connectors.whatsapp.cloud.sandbox.server import RunningCloudSandbox, start_cloud_sandbox
from connectors.whatsapp.cloud.sandbox.state import (
    CloudRecordedRequest,
    CloudSandboxState,
    CloudSentMessage,
)
from connectors.whatsapp.cloud.sandbox.templates import (
    DEFAULT_TEMPLATES,
    CloudButton,
    CloudHeader,
    CloudTemplate,
)
from connectors.whatsapp.cloud.sandbox.webhooks import signature

__all__ = [
    "DEFAULT_TEMPLATES",
    "CloudButton",
    "CloudHeader",
    "CloudRecordedRequest",
    "CloudSandboxApp",
    "CloudSandboxConfig",
    "CloudSandboxState",
    "CloudSentMessage",
    "CloudTemplate",
    "Outcome",
    "RunningCloudSandbox",
    "bsuid_of",
    "create_cloud_app",
    "outcome",
    "signature",
    "start_cloud_sandbox",
]
