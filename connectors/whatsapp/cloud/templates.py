"""Template look-ups in the business account (`GET /{waba_id}/message_templates`): the pages
read, each description read by `connectors.whatsapp.described`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from connectors.whatsapp.described import template_info
from connectors.whatsapp.errors import MalformedAnswer, TemplateUnavailable
from connectors.whatsapp.protocol import TemplateInfo

__all__ = ["FIELDS", "find_template", "find_translations", "page", "template_info"]

FIELDS: Final = "name,language,status,category,parameter_format,components"
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 200
"""A bound on the pages read for one look-up (20,000 templates of that name), against a
paging that never ends."""

FetchPage = Callable[[Mapping[str, str]], Awaitable[Mapping[str, Any]]]
"""Reads one page of templates for these query parameters (an answer `page` accepted)."""


def page(answer: Any) -> Mapping[str, Any]:
    """A page of templates as answered; `MalformedAnswer` when it has no `data` list."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise MalformedAnswer("message_templates: success answer without a data list", status=200)
    return answer


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
