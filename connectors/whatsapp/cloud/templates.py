"""Template look-ups in the business account (`GET /{waba_id}/message_templates`): the pages
read, a template's description turned into a `TemplateInfo`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from connectors.whatsapp.errors import MalformedAnswer, TemplateUnavailable
from connectors.whatsapp.protocol import ParameterFormat, TemplateInfo
from connectors.whatsapp.shape import HEADER_FORMATS, ButtonShape, HeaderFormat, TemplateShape

FIELDS: Final = "name,language,status,category,parameter_format,components"
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 200
"""A bound on the pages read for one look-up (20,000 templates of that name), against a
paging that never ends."""

_NAMED = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")

FetchPage = Callable[[Mapping[str, str]], Awaitable[Mapping[str, Any]]]
"""Reads one page of templates for these query parameters (an answer `page` accepted)."""


def page(answer: Any) -> Mapping[str, Any]:
    """A page of templates as answered; `MalformedAnswer` when it has no `data` list."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise MalformedAnswer("message_templates: success answer without a data list", status=200)
    return answer


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


def _next_cursor(answer: Mapping[str, Any]) -> str | None:
    """The cursor of the next page, None on the last one (Graph leaves out `paging.next`)."""
    paging = answer.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return str(after) if after else None


async def find_translations(fetch_page: FetchPage, name: str) -> list[TemplateInfo]:
    """Every language of the template of exactly this name, reading every page (the API's
    `name` filter also matches longer names)."""
    query = {"name": name, "fields": FIELDS, "limit": str(PAGE_SIZE)}
    found: list[TemplateInfo] = []
    for _ in range(MAX_PAGES):
        answer = await fetch_page(query)
        found.extend(
            template_info(item)
            for item in answer["data"]
            if isinstance(item, dict) and item.get("name") == name
        )
        after = _next_cursor(answer)
        if after is None:
            break
        query = {**query, "after": after}
    return found


async def find_template(
    fetch_page: FetchPage, name: str, language: str, *, account: str
) -> TemplateInfo:
    """The template of exactly this name and language; `TemplateUnavailable` naming both and
    the `account` when no page has it."""
    for info in await find_translations(fetch_page, name):
        if info.language == language:
            return info
    raise TemplateUnavailable(
        f"template {name!r} in language {language!r} is not in {account}: check the campaign's "
        "template name and language (the language code as the template was created, e.g. en "
        "or en_US); nothing was sent",
        title="template not found",
    )
