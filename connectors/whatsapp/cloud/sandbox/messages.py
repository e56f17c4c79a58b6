"""Validation of a Cloud template send, in the order the sandbox reports problems.

Codes chosen where Meta's reference is silent (cloud-api.md says "choose"):
- body parameter text with a newline, a tab or more than 4 spaces in a row: 100 (what the live
  API answers, "Param text cannot have new-line/tab characters or more than 4 consecutive
  spaces"), or 132012 with `text_format_code=132012`;
- text over 1,024 characters: 132005 (hydrated text too long); empty text: 131008;
- a template not APPROVED but neither PAUSED (132015) nor DISABLED (132016): 132001;
- a POSITIONAL template given `parameter_name`, or NAMED names that differ: 132000;
- a non-MARKETING template on `/marketing_messages`: 131064;
- a free-form message (`type` text, image...): 131047, as outside a customer-service window;
- a header or button component that does not fit the template (see `sandbox_components`):
  132000 when it does not match the template, 131008 when a required one is missing, 131009
  when it is malformed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from connectors.whatsapp.cloud.sandbox.templates import CloudTemplate
from connectors.whatsapp.onprem.sandbox.rules import digits_of
from connectors.whatsapp.sandbox_components import ProblemKind, check_components
from connectors.whatsapp.shape import BAD_SPACING

MAX_TEXT: Final = 1024
MAX_CALLBACK_DATA: Final = 512
PRODUCT_POLICIES: Final = ("CLOUD_API_FALLBACK", "STRICT")
FREE_FORM: Final = frozenset(
    {"text", "image", "audio", "video", "document", "sticker", "location", "contacts"}
    | {"interactive", "reaction"}
)
BAD_TEXT_DETAILS: Final = (
    "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
)
_TO: Final = re.compile(r"\+?\d{1,20}")
COMPONENT_CODES: Final[Mapping[ProblemKind, int]] = {
    "mismatch": 132000,
    "missing": 131008,
    "invalid": 131009,
}
"""The code of each kind of header or button problem."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a send is refused: the Cloud error code and its details."""

    code: int
    details: str


@dataclass(frozen=True, slots=True)
class CloudSend:
    """A valid template send: recipient as given and as digits, template, ordered texts."""

    to: str
    digits: str
    template: CloudTemplate
    params: tuple[str, ...]
    callback_data: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where the send came in and what the account allows there."""

    marketing_endpoint: bool
    marketing_on_messages: bool = True
    text_format_code: int = 100


def _invalid(details: str) -> Rejection:
    return Rejection(100, details)


def parse_send(
    body: Any, templates: Sequence[CloudTemplate], route: Route
) -> CloudSend | Rejection:
    """Check a send body: envelope, template (exists, status, route), parameters, texts, then
    the header and buttons."""
    envelope = _envelope(body, route)
    if isinstance(envelope, Rejection):
        return envelope
    to, callback_data, template_obj = envelope
    template = _template(template_obj, templates, route)
    if isinstance(template, Rejection):
        return template
    params = _parameters(template_obj.get("components", []), template)
    if isinstance(params, Rejection):
        return params
    for text in params:
        problem = _text_problem(text, route.text_format_code)
        if problem is not None:
            return problem
    named = template.parameter_format == "NAMED"
    components = check_components(template_obj.get("components", []), template.shape, named=named)
    if components is not None:
        return Rejection(COMPONENT_CODES[components.kind], components.details)
    return CloudSend(to, digits_of(to), template, params, callback_data)


def _envelope(body: Any, route: Route) -> tuple[str, str | None, dict[str, Any]] | Rejection:
    """`to`, `biz_opaque_callback_data` and the template object of a well-formed body."""
    if not isinstance(body, dict):
        return _invalid("body: must be a JSON object")
    if body.get("messaging_product") != "whatsapp":
        return _invalid("The parameter messaging_product is required and must be 'whatsapp'")
    if body.get("recipient_type", "individual") != "individual":
        return _invalid("recipient_type: only 'individual' is supported")
    to = body.get("to")
    if not isinstance(to, str) or not _TO.fullmatch(to):
        return _invalid(f"to: {to!r} is not a phone number (digits, a leading + accepted)")
    kind = body.get("type")
    if kind in FREE_FORM:
        return Rejection(131047, "More than 24 hours have passed since the recipient last replied")
    if kind != "template":
        return _invalid(f"type: {kind!r}; send 'template'")
    callback_data = body.get("biz_opaque_callback_data")
    if callback_data is not None and (
        not isinstance(callback_data, str) or len(callback_data) > MAX_CALLBACK_DATA
    ):
        return _invalid(f"biz_opaque_callback_data: a string of at most {MAX_CALLBACK_DATA}")
    if route.marketing_endpoint:
        if body.get("product_policy", PRODUCT_POLICIES[0]) not in PRODUCT_POLICIES:
            return _invalid(f"product_policy: use one of {', '.join(PRODUCT_POLICIES)}")
        if not isinstance(body.get("message_activity_sharing", False), bool):
            return _invalid("message_activity_sharing: must be true or false")
    template = body.get("template")
    if not isinstance(template, dict):
        return _invalid("The parameter template is required and must be an object")
    return to, callback_data, template


def _template(
    obj: Mapping[str, Any], templates: Sequence[CloudTemplate], route: Route
) -> CloudTemplate | Rejection:
    """The registry's template named by `obj`, if it may be sent on this route."""
    name, language = obj.get("name"), obj.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(name, str) or not name:
        return _invalid("template.name is required")
    if not isinstance(code, str) or not code:
        return _invalid("template.language.code is required")
    found = next((t for t in templates if (t.name, t.language) == (name, code)), None)
    if found is None or found.status in ("PENDING", "REJECTED"):
        return Rejection(132001, f"template name ({name}) does not exist in {code}")
    if found.status == "PAUSED":
        return Rejection(132015, f"template {name} ({code}) is paused for low quality")
    if found.status == "DISABLED":
        return Rejection(132016, f"template {name} ({code}) is disabled")
    if route.marketing_endpoint and found.category != "MARKETING":
        return Rejection(131064, f"template {name} is {found.category}; send it to /messages")
    if found.category == "MARKETING" and not (
        route.marketing_endpoint or route.marketing_on_messages
    ):
        return Rejection(131063, f"template {name} is MARKETING; send it to /marketing_messages")
    return found


def _parameters(components: Any, template: CloudTemplate) -> tuple[str, ...] | Rejection:
    """The body texts in the template's parameter order, checked against its format."""
    given = _body_parameters(components)
    if isinstance(given, Rejection):
        return given
    expected = template.parameters
    if len(given) != len(expected):
        return Rejection(
            132000,
            f"body: number of localizable_params ({len(given)}) does not match the expected "
            f"number of params ({len(expected)})",
        )
    names = [name for name, _ in given]
    if template.parameter_format == "POSITIONAL":
        if any(name is not None for name in names):
            return Rejection(132000, f"template {template.name} is POSITIONAL: drop parameter_name")
        return tuple(text for _, text in given)
    if any(not name for name in names):
        return _invalid("Parameter name is missing or empty")
    if sorted(str(n) for n in names) != sorted(expected):
        return Rejection(
            132000,
            f"body: parameter names {sorted(str(n) for n in names)} do not match the template's "
            f"{sorted(expected)}",
        )
    by_name = {name: text for name, text in given}
    return tuple(by_name[name] for name in expected)


def _body_parameters(components: Any) -> list[tuple[str | None, str]] | Rejection:
    """(parameter_name or None, text) of every body parameter; other components are ignored."""
    if not isinstance(components, list):
        return _invalid("template.components: must be a list")
    found: list[tuple[str | None, str]] = []
    for i, component in enumerate(components):
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            return _invalid(f"template.components[{i}]: must be an object with a type")
        if component["type"].lower() != "body":
            continue
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            return _invalid(f"template.components[{i}].parameters: must be a list")
        for j, parameter in enumerate(parameters):
            where = f"template.components[{i}].parameters[{j}]"
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                return Rejection(131009, f"{where}.type: the sandbox takes text parameters")
            text, name = parameter.get("text"), parameter.get("parameter_name", None)
            if text is None:
                return Rejection(131008, f"{where}: Parameter of type text is missing text value")
            if not isinstance(text, str) or not (name is None or isinstance(name, str)):
                return Rejection(131009, f"{where}: text and parameter_name must be strings")
            found.append((name, text))
    return found


def _text_problem(text: str, format_code: int) -> Rejection | None:
    """The first problem of one body text: empty, bad whitespace, or too long."""
    if not text.strip():
        return Rejection(131008, "Parameter of type text is missing text value")
    if BAD_SPACING.search(text):
        return Rejection(format_code, BAD_TEXT_DETAILS)
    if len(text) > MAX_TEXT:
        return Rejection(132005, f"body parameter text has {len(text)} characters; max {MAX_TEXT}")
    return None
