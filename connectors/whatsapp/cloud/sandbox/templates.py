"""The template registry: Cloud templates as `GET /{waba_id}/message_templates` lists them.

A template's parameters come from its body text: `{{first_name}}` placeholders make it NAMED,
`{{1}}` ones POSITIONAL, none: no parameters. A TEXT header may hold one placeholder of the same
style; buttons are listed as Meta lists them. The default registry:

| name | language | category | status | parameters | header | buttons |
|---|---|---|---|---|---|---|
| order_update | en, de | UTILITY | APPROVED | 1 positional | - | - |
| spring_sale | en | MARKETING | APPROVED | named `first_name` | - | - |
| welcome | en | UTILITY | APPROVED | none | - | - |
| summer_promo | en | MARKETING | PAUSED | named `first_name` | - | - |
| account_alert | en | UTILITY | APPROVED | named `first_name` | - | - |
| order_shipped | en, de | UTILITY | APPROVED | 1 positional | IMAGE | URL `{{1}}`, QUICK_REPLY |
| order_shipped | fr | UTILITY | PENDING | 1 positional | IMAGE | URL `{{1}}`, QUICK_REPLY |
| spring_coupon | en | MARKETING | APPROVED | none | TEXT `{{1}}` | COPY_CODE, URL static |
| terms_update | en | UTILITY | APPROVED | named `first_name` | DOCUMENT | - |
| product_video | en | UTILITY | APPROVED | none | VIDEO | QUICK_REPLY |
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlencode

from connectors.whatsapp.shape import (
    HEADER_FORMATS,
    MAX_BUTTONS,
    ButtonShape,
    HeaderFormat,
    TemplateShape,
)

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
ButtonType = Literal["URL", "QUICK_REPLY", "COPY_CODE", "PHONE_NUMBER"]
BUTTON_TYPES: Final[tuple[ButtonType, ...]] = ("URL", "QUICK_REPLY", "COPY_CODE", "PHONE_NUMBER")
MEDIA_EXAMPLES: Final[Mapping[HeaderFormat, str]] = {
    "IMAGE": "https://scontent.example/h.jpg",
    "VIDEO": "https://scontent.example/h.mp4",
    "DOCUMENT": "https://scontent.example/h.pdf",
}
"""The sample a media header lists when none is given (Meta lists the uploaded sample's URL)."""
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


def _placeholders(text: str) -> tuple[str, ...]:
    """The `{{name}}` and `{{1}}` placeholders of a text, each once, in order."""
    return tuple(dict.fromkeys(_NAMED.findall(text) + _POSITIONAL.findall(text)))


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudHeader:
    """A template's header: TEXT with at most one placeholder and its `example` value, or a
    media format whose `example` is its sample's URL (listed as `header_handle`)."""

    format: HeaderFormat
    text: str | None = None
    example: str | None = None

    def __post_init__(self) -> None:
        if self.format not in HEADER_FORMATS:
            raise ValueError(f"header format {self.format!r}; use {HEADER_FORMATS}")
        if self.format != "TEXT":
            if self.text is not None:
                raise ValueError(f"a {self.format} header has no text")
            return
        if not self.text:
            raise ValueError("a TEXT header needs its text")
        why = None
        if len(self.parameters) > 1:
            why = "at most one placeholder"
        elif _POSITIONAL.search(self.text) and self.parameters != ("1",):
            why = "a positional header's placeholder is {{1}}"
        elif bool(self.parameters) != (self.example is not None):
            why = "an example exactly when it has a placeholder"
        if why is not None:
            raise ValueError(f"header {self.text!r}: {why}")

    @property
    def parameters(self) -> tuple[str, ...]:
        """A TEXT header's placeholder name or number, if it has one."""
        return _placeholders(self.text or "")

    def as_json(self, named: bool) -> dict[str, Any]:
        """The HEADER component as the API lists it."""
        if self.format != "TEXT":
            handle = self.example or MEDIA_EXAMPLES[self.format]
            return {"type": "HEADER", "format": self.format, "example": {"header_handle": [handle]}}
        header: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": self.text}
        if self.parameters and named:
            sample = {"param_name": self.parameters[0], "example": self.example}
            header["example"] = {"header_text_named_params": [sample]}
        elif self.parameters:
            header["example"] = {"header_text": [self.example]}
        return header


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudButton:
    """One button: a URL (dynamic when it ends in `{{1}}`, with an `example` address), a
    QUICK_REPLY, a COPY_CODE (its `example` coupon) or a PHONE_NUMBER."""

    type: ButtonType
    text: str = ""
    url: str | None = None
    phone_number: str | None = None
    example: str | None = None

    def __post_init__(self) -> None:
        if self.type not in BUTTON_TYPES:
            raise ValueError(f"button type {self.type!r}; use {BUTTON_TYPES}")
        if (self.type == "URL") != (self.url is not None):
            raise ValueError(f"{self.type} button: a url exactly when it is a URL button")
        if (self.type == "PHONE_NUMBER") != (self.phone_number is not None):
            raise ValueError(f"{self.type} button: a phone_number exactly on PHONE_NUMBER")
        if (self.dynamic or self.type == "COPY_CODE") != (self.example is not None):
            raise ValueError(
                f"{self.type} button: an example exactly on COPY_CODE and URL {{{{1}}}}"
            )
        if self.type != "COPY_CODE" and not self.text:
            raise ValueError(f"{self.type} button: needs its text")

    @property
    def dynamic(self) -> bool:
        """True for a URL button whose address ends in the `{{1}}` a send fills."""
        return self.type == "URL" and (self.url or "").endswith("{{1}}")

    def as_json(self) -> dict[str, Any]:
        """The button as the API lists it in the BUTTONS component."""
        button: dict[str, Any] = {"type": self.type}
        if self.text:
            button["text"] = self.text
        if self.url is not None:
            button["url"] = self.url
        if self.phone_number is not None:
            button["phone_number"] = self.phone_number
        if self.example is not None:
            button["example"] = [self.example] if self.type == "URL" else self.example
        return button


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudTemplate:
    """One template in one language; `examples` are the body's sample values, in order."""

    name: str
    language: str
    category: Category
    body: str
    examples: tuple[str, ...] = ()
    status: TemplateStatus = "APPROVED"
    header: CloudHeader | None = None
    buttons: tuple[CloudButton, ...] = ()

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"template {self.name}: category {self.category!r}; use {CATEGORIES}")
        if self.status not in STATUSES:
            raise ValueError(f"template {self.name}: status {self.status!r}; use {STATUSES}")
        if _NAMED.search(self._texts) and _POSITIONAL.search(self._texts):
            raise ValueError(f"template {self.name}: mixes {{{{name}}}} and {{{{1}}}} placeholders")
        if len(self.examples) != len(self.parameters):
            raise ValueError(f"template {self.name}: one example per parameter, in order")
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"template {self.name}: at most {MAX_BUTTONS} buttons")

    @property
    def parameter_format(self) -> ParameterFormat:
        """NAMED when the body or header uses `{{name}}` placeholders, else POSITIONAL (Meta's
        default)."""
        return "NAMED" if _NAMED.search(self._texts) else "POSITIONAL"

    @property
    def _texts(self) -> str:
        """The body's text and a TEXT header's, where placeholders may be."""
        header = self.header.text if self.header is not None else None
        return f"{self.body}\n{header or ''}"

    @property
    def shape(self) -> TemplateShape:
        """The header and buttons a send must fill, as the sandbox checks them."""
        buttons = tuple(ButtonShape(b.type, b.dynamic) for b in self.buttons)
        if self.header is None:
            return TemplateShape(buttons=buttons)
        return TemplateShape(self.header.format, self.header.parameters, buttons)

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
        components = [body]
        if self.header is not None:
            components.insert(0, self.header.as_json(self.parameter_format == "NAMED"))
        if self.buttons:
            components.append({"type": "BUTTONS", "buttons": [b.as_json() for b in self.buttons]})
        full: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "parameter_format": self.parameter_format,
            "components": components,
        }
        return {**{f: full[f] for f in fields if f in full}, "id": self.id}


def _order_shipped(language: str, body: str, status: TemplateStatus = "APPROVED") -> CloudTemplate:
    """order_shipped in one language: an IMAGE header, a tracking link and a quick reply."""
    track = CloudButton(
        type="URL",
        text="Track",
        url="https://shop.example.com/track/{{1}}",
        example="https://shop.example.com/track/A1",
    )
    return CloudTemplate(
        name="order_shipped",
        language=language,
        category="UTILITY",
        body=body,
        examples=("Ada",),
        status=status,
        header=CloudHeader(format="IMAGE"),
        buttons=(track, CloudButton(type="QUICK_REPLY", text="Stop updates")),
    )


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
    _order_shipped("en", "Hi {{1}}, your order has shipped."),
    _order_shipped("de", "Hallo {{1}}, Ihre Bestellung ist unterwegs."),
    _order_shipped("fr", "Bonjour {{1}}, votre commande a été expédiée.", "PENDING"),
    CloudTemplate(
        name="spring_coupon",
        language="en",
        category="MARKETING",
        body="Use the code below for 20% off everything.",
        header=CloudHeader(format="TEXT", text="Spring sale, {{1}}!", example="Ada"),
        buttons=(
            CloudButton(type="COPY_CODE", example="SPRING20"),
            CloudButton(type="URL", text="Shop", url="https://shop.example.com/spring"),
        ),
    ),
    CloudTemplate(
        name="terms_update",
        language="en",
        category="UTILITY",
        body="Hi {{first_name}}, our terms change on 1 January.",
        examples=("Ada",),
        header=CloudHeader(format="DOCUMENT"),
    ),
    CloudTemplate(
        name="product_video",
        language="en",
        category="UTILITY",
        body="Our new collection is here.",
        header=CloudHeader(format="VIDEO"),
        buttons=(CloudButton(type="QUICK_REPLY", text="Show me more"),),
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
