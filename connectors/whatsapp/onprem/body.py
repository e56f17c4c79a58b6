"""The v1 `/v1/messages` body of one template message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.whatsapp.protocol import Template


def template_body(to: str, template: Template, params: Sequence[str]) -> dict[str, Any]:
    """The `/v1/messages` body for one template message."""
    body: dict[str, Any] = {
        "to": to,
        "type": "template",
        "template": {
            "namespace": template.namespace,
            "name": template.name,
            "language": {"policy": "deterministic", "code": template.language},
            "components": [],
        },
    }
    if params:
        body["template"]["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
        ]
    return body
