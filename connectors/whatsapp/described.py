"""A template described as Meta lists it (`components`: HEADER, BODY, FOOTER, BUTTONS), read into
a `TemplateInfo`: the Cloud look-up's answer, or a v1 campaign's declaration of its template."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.whatsapp.protocol import ParameterFormat, TemplateInfo
from connectors.whatsapp.shape import HEADER_FORMATS, ButtonShape, HeaderFormat, TemplateShape

_NAMED = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def _component(components: object, kind: str) -> dict[str, Any]:
    """The component of this type (BODY, HEADER, BUTTONS) of a description ({}: none)."""
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict) and str(component.get("type", "")).upper() == kind:
                return component
    return {}


def _header_params(header: Mapping[str, Any], parameter_format: ParameterFormat) -> tuple[str, ...]:
    """A TEXT header's parameter names (NAMED) or numbers (POSITIONAL), from its text."""
    pattern = _NAMED if parameter_format == "NAMED" else _POSITIONAL
    return tuple(dict.fromkeys(pattern.findall(str(header.get("text") or ""))))


def _button(button: object) -> ButtonShape:
    """One listed button: its type, and for URL whether its address takes a suffix."""
    if not isinstance(button, dict):
        return ButtonShape("UNKNOWN")
    kind = str(button.get("type") or "UNKNOWN").upper()
    dynamic = kind == "URL" and bool(_POSITIONAL.search(str(button.get("url") or "")))
    return ButtonShape(kind, dynamic)


def shape_of(components: object, parameter_format: ParameterFormat) -> TemplateShape:
    """The header and buttons of a template description."""
    header = _component(components, "HEADER")
    given = str(header.get("format") or "").upper()
    header_format: HeaderFormat | None = None
    for known in HEADER_FORMATS:
        if given == known:
            header_format = known
    params = _header_params(header, parameter_format) if header_format == "TEXT" else ()
    buttons = _component(components, "BUTTONS").get("buttons")
    listed = tuple(_button(b) for b in buttons) if isinstance(buttons, list) else ()
    return TemplateShape(header_format, params, listed)


def _named(body: Mapping[str, Any]) -> tuple[str, ...]:
    """A NAMED body's parameter names, each once, in the order they first appear."""
    names = _NAMED.findall(str(body.get("text") or ""))
    if not names:  # no text asked or given: the examples name them too
        example = body.get("example")
        listed = example.get("body_text_named_params") if isinstance(example, dict) else None
        if isinstance(listed, list):
            names = [
                str(p["param_name"]) for p in listed if isinstance(p, dict) and "param_name" in p
            ]
    return tuple(dict.fromkeys(names))


def _positional_count(body: Mapping[str, Any]) -> int:
    """A POSITIONAL body's parameter count: its highest `{{n}}`, else its example's length."""
    numbers = [int(n) for n in _POSITIONAL.findall(str(body.get("text") or ""))]
    if numbers:
        return max(numbers)
    example = body.get("example")
    rows = example.get("body_text") if isinstance(example, dict) else None
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        return len(rows[0])
    return 0


def template_info(item: Mapping[str, Any]) -> TemplateInfo:
    """One template description as the API lists it, read into a `TemplateInfo`.

    A template without `parameter_format` is POSITIONAL (Meta's default) unless its body uses
    named placeholders.
    """
    body = _component(item.get("components"), "BODY")
    given = str(item.get("parameter_format") or "").upper()
    parameter_format: ParameterFormat
    if given in ("NAMED", "POSITIONAL"):
        parameter_format = "NAMED" if given == "NAMED" else "POSITIONAL"
    else:
        parameter_format = "NAMED" if _NAMED.search(str(body.get("text") or "")) else "POSITIONAL"
    names = _named(body) if parameter_format == "NAMED" else ()
    category = item.get("category")
    return TemplateInfo(
        name=str(item.get("name")),
        language=str(item.get("language")),
        status=str(item.get("status") or "UNKNOWN").upper(),
        category=str(category).upper() if category else None,
        parameter_format=parameter_format,
        parameter_names=names,
        parameter_count=len(names) if parameter_format == "NAMED" else _positional_count(body),
        shape=shape_of(item.get("components"), parameter_format),
    )
