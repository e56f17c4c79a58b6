"""The template registry: Cloud templates as `GET /{waba_id}/message_templates` lists them.

A template's parameters come from its body text: `{{first_name}}` placeholders make it NAMED,
`{{1}}` ones POSITIONAL, none: no parameters. The default registry:

| name | language | category | status | parameters |
|---|---|---|---|---|
| order_update | en, de | UTILITY | APPROVED | 1 positional |
| spring_sale | en | MARKETING | APPROVED | named `first_name` |
| welcome | en | UTILITY | APPROVED | none |
| summer_promo | en | MARKETING | PAUSED | named `first_name` |
| account_alert | en | UTILITY | APPROVED | named `first_name` |
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlencode

Category = Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
CATEGORIES: Final[tuple[Category, ...]] = ("MARKETING", "UTILITY", "AUTHENTICATION")
TemplateStatus = Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"]
STATUSES: Final[tuple[TemplateStatus, ...]] = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
)
ParameterFormat = Literal["NAMED", "POSITIONAL"]
TEMPLATE_FIELDS: Final = (
    "name",
    "language",
    "status",
    "category",
    "parameter_format",
    "components",
    "id",
)
DEFAULT_PAGE_SIZE: Final = 25

_NAMED = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}")
_POSITIONAL = re.compile(r"\{\{(\d+)\}\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudTemplate:
    """One template in one language; `examples` are the body's sample values, in order."""

    name: str
    language: str
    category: Category
    body: str
    examples: tuple[str, ...] = ()
    status: TemplateStatus = "APPROVED"

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"template {self.name}: category {self.category!r}; use {CATEGORIES}")
        if self.status not in STATUSES:
            raise ValueError(f"template {self.name}: status {self.status!r}; use {STATUSES}")
        if _NAMED.search(self.body) and _POSITIONAL.search(self.body):
            raise ValueError(f"template {self.name}: mixes {{{{name}}}} and {{{{1}}}} placeholders")
        if len(self.examples) != len(self.parameters):
            raise ValueError(f"template {self.name}: one example per parameter, in order")

    @property
    def parameter_format(self) -> ParameterFormat:
        """NAMED when the body uses `{{name}}` placeholders, else POSITIONAL (Meta's default)."""
        return "NAMED" if _NAMED.search(self.body) else "POSITIONAL"

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameter names (NAMED) or numbers (POSITIONAL) in the body, each once, in order."""
        pattern = _NAMED if self.parameter_format == "NAMED" else _POSITIONAL
        return tuple(dict.fromkeys(pattern.findall(self.body)))

    @property
    def id(self) -> str:
        """A stable numeric id, as Graph gives every template."""
        digest = hashlib.sha256(f"{self.name}/{self.language}".encode()).digest()
        return str(int.from_bytes(digest[:7], "big"))

    def as_json(self, fields: Sequence[str] = TEMPLATE_FIELDS) -> dict[str, Any]:
        """The template as the API lists it: the asked fields plus `id`."""
        body: dict[str, Any] = {"type": "BODY", "text": self.body}
        if self.parameter_format == "NAMED" and self.examples:
            named = [
                {"param_name": n, "example": e}
                for n, e in zip(self.parameters, self.examples, strict=True)
            ]
            body["example"] = {"body_text_named_params": named}
        elif self.examples:
            body["example"] = {"body_text": [list(self.examples)]}
        full: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "components": [body],
        }
        return {**{f: full[f] for f in fields if f in full}, "id": self.id}


DEFAULT_TEMPLATES: Final[tuple[CloudTemplate, ...]] = (
    CloudTemplate(
        name="order_update",
        language="en",
        category="UTILITY",
        body="Hello, your order {{1}} is on its way.",
        examples=("A-1042",),
    ),
    CloudTemplate(
        name="order_update",
        language="de",
        category="UTILITY",
        body="Hallo, Ihre Bestellung {{1}} ist unterwegs.",
        examples=("A-1042",),
    ),
    CloudTemplate(
        name="spring_sale",
        language="en",
        category="MARKETING",
        body="Hi {{first_name}}, our spring sale starts today: 20% off everything.",
        examples=("Ada",),
    ),
    CloudTemplate(
        name="welcome", language="en", category="UTILITY", body="Welcome! Reply STOP to opt out."
    ),
    CloudTemplate(
        name="summer_promo",
        language="en",
        category="MARKETING",
        body="Hi {{first_name}}, summer deals are here.",
        examples=("Ada",),
        status="PAUSED",
    ),
    CloudTemplate(
        name="account_alert",
        language="en",
        category="UTILITY",
        body="Hi {{first_name}}, we noticed a new sign-in to your account.",
        examples=("Ada",),
    ),
)


class PageError(ValueError):
    """A paging or filter parameter the API would refuse (answered as error 100)."""


def cursor(index: int) -> str:
    """The opaque cursor pointing at list position `index`."""
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode().rstrip("=")


def _position(value: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        kind, _, index = decoded.partition(":")
        if kind == "i" and index.isdigit():
            return int(index)
    except (ValueError, UnicodeDecodeError):
        pass
    raise PageError(f"after: {value!r} is not a cursor this API issued")


def page(templates: Sequence[CloudTemplate], query: Mapping[str, str], url: str) -> dict[str, Any]:
    """One page of `templates` filtered by `name` (substring), `language`, `status`, `category`."""
    chosen = [
        t
        for t in templates
        if query.get("name", "") in t.name
        and all(query.get(k) in (None, getattr(t, k)) for k in ("language", "status", "category"))
    ]
    limit_text = query.get("limit", str(DEFAULT_PAGE_SIZE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise PageError(f"limit: {limit_text!r}; use a whole number from 1 to 1000")
    start = _position(query["after"]) + 1 if "after" in query else 0
    limit = int(limit_text)
    fields = [f.strip() for f in query.get("fields", ",".join(TEMPLATE_FIELDS)).split(",")]
    unknown = [f for f in fields if f and f not in TEMPLATE_FIELDS]
    if unknown:
        raise PageError(f"fields: no field {unknown[0]!r} on a message template")
    data = [t.as_json(fields) for t in chosen[start : start + limit]]
    answer: dict[str, Any] = {"data": data}
    if data:
        last = start + len(data) - 1
        answer["paging"] = {"cursors": {"before": cursor(start), "after": cursor(last)}}
        if last + 1 < len(chosen):
            kept = {k: v for k, v in query.items() if k != "access_token"}
            following = {**kept, "limit": str(limit), "after": cursor(last)}
            answer["paging"]["next"] = f"{url}?{urlencode(following)}"
    return answer
