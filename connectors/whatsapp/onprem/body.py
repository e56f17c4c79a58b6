"""The v1 `/v1/messages` body of one template message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.whatsapp.components import NO_EXTRAS, Extras, components
from connectors.whatsapp.errors import TemplateMismatch
from connectors.whatsapp.protocol import Template


def template_body(
    to: str, template: Template, params: Sequence[str], extras: Extras = NO_EXTRAS
) -> dict[str, Any]:
    """The `/v1/messages` body for one template message; a template without a namespace is
    refused (`TemplateMismatch`, nothing sent): the v1 API needs one."""
    if not template.namespace:
        raise TemplateMismatch(
            f"template {template.name} ({template.language}) has no template.namespace: the v1 "
            "API needs the business's template namespace; set it in the campaign's template; "
            "nothing was sent"
        )
    body: dict[str, Any] = {
        "to": to,
        "type": "template",
        "template": {
            "namespace": template.namespace,
            "name": template.name,
            "language": {"policy": "deterministic", "code": template.language},
            "components": components([{"type": "text", "text": p} for p in params], extras),
        },
    }
    return body
