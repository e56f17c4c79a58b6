"""The `components` of one template send, the same shape on the v1 and Cloud APIs: the header's
parameter, the body's texts, each button's parameter by its index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.whatsapp.shape import BUTTON_PARAMETER, ButtonSubType, HeaderFormat


@dataclass(frozen=True, slots=True)
class HeaderFill:
    """One customer's header: a TEXT header's parameter, or a media header's link (and a
    document's file name)."""

    format: HeaderFormat
    text: str | None = None
    link: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class ButtonFill:
    """One customer's parameter of the button at `index`: a URL suffix, a quick-reply payload or
    a coupon code."""

    index: int
    sub_type: ButtonSubType
    value: str


@dataclass(frozen=True, slots=True)
class Extras:
    """What a send fills besides the body: its header, its buttons."""

    header: HeaderFill | None = None
    buttons: tuple[ButtonFill, ...] = ()


NO_EXTRAS = Extras()


def _header(header: HeaderFill, names: Sequence[str]) -> dict[str, Any]:
    """The header component; a NAMED TEXT header's parameter carries its name."""
    if header.format == "TEXT":
        parameter: dict[str, Any] = {"type": "text", "text": header.text}
        if names:
            parameter["parameter_name"] = names[0]
    else:
        kind = header.format.lower()
        media: dict[str, Any] = {"link": header.link}
        if header.format == "DOCUMENT" and header.filename:
            media["filename"] = header.filename
        parameter = {"type": kind, kind: media}
    return {"type": "header", "parameters": [parameter]}


def _button(button: ButtonFill) -> dict[str, Any]:
    """One button component, addressed by its index as a string (as both APIs document it)."""
    kind = BUTTON_PARAMETER[button.sub_type]
    return {
        "type": "button",
        "sub_type": button.sub_type,
        "index": str(button.index),
        "parameters": [{"type": kind, kind: button.value}],
    }


def components(
    body: Sequence[dict[str, Any]], extras: Extras, *, header_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The send's components in the template's order: header, body, buttons by index; parts
    without parameters are left out (the API fills them from the template)."""
    out: list[dict[str, Any]] = []
    if extras.header is not None:
        out.append(_header(extras.header, header_names))
    if body:
        out.append({"type": "body", "parameters": list(body)})
    out.extend(_button(b) for b in sorted(extras.buttons, key=lambda b: b.index))
    return out
