"""Template look-ups in the business account (`GET /{waba_id}/message_templates`): the pages
read, a template's description turned into a `TemplateInfo`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from connectors.whatsapp.errors import MalformedAnswer, TemplateUnavailable
from connectors.whatsapp.protocol import ParameterFormat, TemplateInfo

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


def _body(components: object) -> dict[str, Any]:
    """The BODY component of a template description ({} when there is none)."""
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
                return component
    return {}


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
    body = _body(item.get("components"))
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
    )


def _next_cursor(answer: Mapping[str, Any]) -> str | None:
    """The cursor of the next page, None on the last one (Graph leaves out `paging.next`)."""
    paging = answer.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return str(after) if after else None


async def find_template(
    fetch_page: FetchPage, name: str, language: str, *, account: str
) -> TemplateInfo:
    """The template of exactly this name and language, reading pages until it shows up (the
    API's `name` filter also matches longer names); `TemplateUnavailable` naming both and the
    `account` when no page has it."""
    query = {"name": name, "fields": FIELDS, "limit": str(PAGE_SIZE)}
    for _ in range(MAX_PAGES):
        answer = await fetch_page(query)
        for item in answer["data"]:
            if (
                isinstance(item, dict)
                and item.get("name") == name
                and item.get("language") == language
            ):
                return template_info(item)
        after = _next_cursor(answer)
        if after is None:
            break
        query = {**query, "after": after}
    raise TemplateUnavailable(
        f"template {name!r} in language {language!r} is not in {account}: check the campaign's "
        "template name and language (the language code as the template was created, e.g. en "
        "or en_US); nothing was sent",
        title="template not found",
    )
