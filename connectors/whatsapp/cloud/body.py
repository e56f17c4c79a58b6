"""The Cloud API's send body of one template message, and the endpoint it goes to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from connectors.whatsapp.components import NO_EXTRAS, Extras, components
from connectors.whatsapp.errors import TemplateMismatch
from connectors.whatsapp.protocol import Template

MarketingRoute = Literal["auto", "messages"]
MESSAGES: Final = "messages"
MARKETING_MESSAGES: Final = "marketing_messages"


def endpoint(template: Template, marketing_route: MarketingRoute) -> str:
    """`marketing_messages` for a MARKETING template when the route is `auto` (Meta's routing
    guide), else `messages`."""
    marketing = (template.category or "").upper() == "MARKETING"
    return MARKETING_MESSAGES if marketing and marketing_route == "auto" else MESSAGES


def _parameters(template: Template, params: Sequence[str]) -> list[dict[str, str]]:
    """The body parameters: NAMED ones carry their `parameter_name`, POSITIONAL ones go in order."""
    if template.parameter_format != "NAMED":
        return [{"type": "text", "text": p} for p in params]
    names = template.parameter_names
    if len(names) != len(params):
        raise TemplateMismatch(
            f"template {template.name} ({template.language}) is NAMED with {len(names)} "
            f"parameter names {list(names)} but {len(params)} parameters were given: give one "
            "body parameter per name, in the template's order; nothing was sent"
        )
    return [
        {"type": "text", "text": p, "parameter_name": n} for n, p in zip(names, params, strict=True)
    ]


def template_body(
    to: str,
    template: Template,
    params: Sequence[str],
    *,
    extras: Extras = NO_EXTRAS,
    callback: str | None = None,
) -> dict[str, Any]:
    """The `/messages` (or `/marketing_messages`) body for one template message to `to` (E.164
    digits; a leading `+` is dropped); `callback` becomes `biz_opaque_callback_data`."""
    message: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    parts = components(_parameters(template, params), extras, header_names=template.header_names)
    if parts:
        message["components"] = parts
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.removeprefix("+"),
        "type": "template",
    }
    if callback is not None:
        body["biz_opaque_callback_data"] = callback
    body["template"] = message
    return body
