"""The sandboxes' check of a send's header and button components against its template's shape,
so that both refuse what the real APIs refuse; each sandbox keeps checking the body itself.

A problem is one of three kinds, which each sandbox answers with its API's code:
- `mismatch`: the send's components do not fit the template (a header the template lacks, a
  parameter for a button that takes none, a wrong parameter count or name);
- `missing`: the template needs a component the send leaves out (a media header, a TEXT header's
  parameter, a dynamic URL button's suffix, a coupon code);
- `invalid`: a component or value is malformed (unknown type, wrong parameter type, an http://
  link, a suffix with a space, a coupon over 15 characters, a repeated button index).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from connectors.whatsapp.shape import (
    BUTTON_PARAMETER,
    BUTTON_SUB_TYPES,
    BUTTON_VALUE_PROBLEM,
    TemplateShape,
    filename_problem,
    header_text_problem,
    https_link_problem,
)

ProblemKind = Literal["mismatch", "missing", "invalid"]

_INDEX: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class ComponentProblem:
    """Why a send's header or button components are refused: the kind and the field named."""

    kind: ProblemKind
    details: str


def _mismatch(details: str) -> ComponentProblem:
    return ComponentProblem("mismatch", details)


def _invalid(details: str) -> ComponentProblem:
    return ComponentProblem("invalid", details)


def check_components(
    components: list[Any], shape: TemplateShape, *, named: bool
) -> ComponentProblem | None:
    """The first problem of the header and button components against `shape`, None if none;
    `named`: a TEXT header's parameter must carry its `parameter_name` (NAMED templates)."""
    header_seen = False
    buttons_seen: set[int] = set()
    for i, component in enumerate(components):
        kind = component.get("type") if isinstance(component, dict) else None
        if not isinstance(kind, str):
            return _invalid(f"component {i}: must be an object with a type")
        problem: ComponentProblem | None
        match kind.lower():
            case "body":
                continue
            case "header":
                if header_seen:
                    return _invalid("header: given twice; a template has at most one header")
                header_seen = True
                problem = _header(component, shape, named=named)
            case "button":
                problem = _button(component, shape, buttons_seen)
            case _:
                return _invalid(f"component {i}: type {kind!r}; use header, body or button")
        if problem is not None:
            return problem
    return _missing(shape, header_seen=header_seen, buttons_seen=buttons_seen)


def _missing(
    shape: TemplateShape, *, header_seen: bool, buttons_seen: set[int]
) -> ComponentProblem | None:
    """A header or required button the template needs and the send left out."""
    if not header_seen and shape.header_takes_parameter:
        if shape.header == "TEXT":
            details = "header: the template's TEXT header has a parameter; send its text"
        else:
            details = f"header: required by the template's {shape.header} header; send its link"
        return ComponentProblem("missing", details)
    for index, button in enumerate(shape.buttons):
        if button.required and index not in buttons_seen:
            what = "its URL suffix" if button.sub_type == "url" else "its coupon code"
            return ComponentProblem(
                "missing", f"button {index} ({button.sub_type}): required; send {what}"
            )
    return None


def _one_parameter(component: Mapping[str, Any], where: str) -> dict[str, Any] | ComponentProblem:
    """The single parameter of a header or button component."""
    parameters = component.get("parameters")
    if not isinstance(parameters, list) or len(parameters) != 1:
        count = len(parameters) if isinstance(parameters, list) else 0
        return _mismatch(f"{where}: parameters must be a list of exactly 1, got {count}")
    parameter = parameters[0]
    if not isinstance(parameter, dict):
        return _invalid(f"{where}.parameters[0]: must be an object")
    return parameter


def _header(
    component: Mapping[str, Any], shape: TemplateShape, *, named: bool
) -> ComponentProblem | None:
    """The header component against the template's header format."""
    if shape.header is None:
        return _mismatch("header: the template has no header; drop the header component")
    if not shape.header_takes_parameter:
        return _mismatch("header: the template's TEXT header has no parameter; drop the component")
    parameter = _one_parameter(component, "header")
    if isinstance(parameter, ComponentProblem):
        return parameter
    expected = shape.header.lower()
    given = parameter.get("type")
    if given != expected:
        return _invalid(
            f"header.parameters[0].type: {given!r}; the {shape.header} header takes {expected!r}"
        )
    if shape.header == "TEXT":
        return _text_header(parameter, shape.header_params[0], named=named)
    return _media_header(parameter, expected)


def _text_header(
    parameter: Mapping[str, Any], name: str, *, named: bool
) -> ComponentProblem | None:
    """A TEXT header's parameter: its text and, on NAMED templates, its name."""
    where = "header.parameters[0]"
    text = parameter.get("text")
    if not isinstance(text, str):
        return _invalid(f"{where}.text: must be a string")
    problem = header_text_problem(text)
    if problem is not None:
        return _invalid(f"{where}.text {problem}")
    given = parameter.get("parameter_name")
    if not named:
        if given is not None:
            return _mismatch(f"{where}.parameter_name: the template is POSITIONAL; drop it")
        return None
    if not isinstance(given, str) or not given:
        return _invalid(f"{where}.parameter_name: required on a NAMED template ({name!r})")
    if given != name:
        return _mismatch(f"{where}.parameter_name: {given!r}; the header's parameter is {name!r}")
    return None


def _media_header(parameter: Mapping[str, Any], kind: str) -> ComponentProblem | None:
    """A media header's parameter: an object under `kind` with an https link (and a document's
    file name)."""
    where = f"header.parameters[0].{kind}"
    media = parameter.get(kind)
    if not isinstance(media, dict):
        return _invalid(f"{where}: must be an object with a link")
    link = media.get("link")
    if not isinstance(link, str):
        return _invalid(f"{where}.link: must be a string (the sandbox takes links, not ids)")
    problem = https_link_problem(link)
    if problem is not None:
        return _invalid(f"{where}.link {problem}")
    if "filename" not in media:
        return None
    filename = media["filename"]
    if kind != "document":
        return _invalid(f"{where}.filename: only a document header takes a file name")
    if not isinstance(filename, str):
        return _invalid(f"{where}.filename: must be a string")
    problem = filename_problem(filename)
    return None if problem is None else _invalid(f"{where}.filename {problem}")


def _button(
    component: Mapping[str, Any], shape: TemplateShape, seen: set[int]
) -> ComponentProblem | None:
    """One button component: its sub_type and index against the template, then its value."""
    sub_type = component.get("sub_type")
    lowered = sub_type.lower() if isinstance(sub_type, str) else None
    chosen = next((s for s in BUTTON_SUB_TYPES if s == lowered), None)
    if chosen is None:
        return _invalid(f"button: sub_type {sub_type!r}; use one of {', '.join(BUTTON_SUB_TYPES)}")
    raw = component.get("index")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        index = raw
    elif isinstance(raw, str) and _INDEX.fullmatch(raw):
        index = int(raw)
    else:
        return _invalid(f"button ({chosen}): index {raw!r}; use a button's number from 0")
    where = f"button {index} ({chosen})"
    if index in seen:
        return _invalid(f"{where}: index given twice")
    seen.add(index)
    if index >= len(shape.buttons):
        return _mismatch(f"{where}: the template has {len(shape.buttons)} button(s)")
    button = shape.buttons[index]
    if button.sub_type != chosen:
        takes = "nothing" if button.sub_type is None else f"sub_type {button.sub_type}"
        kind = f"{button.type}{' (dynamic)' if button.dynamic else ''}"
        return _mismatch(f"{where}: the template's button {index} is {kind} and takes {takes}")
    parameter = _one_parameter(component, where)
    if isinstance(parameter, ComponentProblem):
        return parameter
    key = BUTTON_PARAMETER[chosen]
    if parameter.get("type") != key:
        given = parameter.get("type")
        return _invalid(f"{where}.parameters[0].type: {given!r}; a {chosen} button takes {key!r}")
    value = parameter.get(key)
    if not isinstance(value, str):
        return _invalid(f"{where}.parameters[0].{key}: must be a string")
    problem = BUTTON_VALUE_PROBLEM[chosen](value)
    return None if problem is None else _invalid(f"{where}.parameters[0].{key} {problem}")
