"""The campaign's header and buttons against the template's own (Cloud: as the business account
lists them), refused before the run with a message naming the component to fix."""

from __future__ import annotations

from connectors.errors import StopRunError
from connectors.whatsapp.shape import TemplateShape
from tasks.template.spec import TemplateSpec

_EXAMPLE = {"url": "suffix", "quick_reply": "payload", "copy_code": "coupon"}


class TemplateRefusedError(StopRunError):
    """The campaign's template cannot be sent as given: the message names the field to fix."""


def _a(header_format: str) -> str:
    """The format with its article: `an IMAGE`, `a VIDEO`."""
    return f"{'an' if header_format[0] in 'AEIOU' else 'a'} {header_format}"


def _header_problem(spec: TemplateSpec, shape: TemplateShape) -> str | None:
    """What does not fit between the campaign's header and the template's."""
    given, has = spec.header, shape.header
    takes = shape.header_takes_parameter
    if given is None:
        if has is None or not takes:
            return None
        what = "link or link_param" if has != "TEXT" else "text or text_param"
        return f'has {_a(has)} header with a parameter: give template.header "{has}" and {what}'
    if has is None:
        return "has no header: leave template.header out"
    if given.format != has:
        return f"has {_a(has)} header; template.header.format says {given.format}"
    if not takes:
        return "has a TEXT header without a parameter: leave template.header out"
    return None


def _button_problems(spec: TemplateSpec, shape: TemplateShape) -> list[str]:
    """What does not fit between the campaign's buttons and the template's."""
    problems = []
    given = {b.index: b for b in spec.buttons}
    for index, button in given.items():
        if index >= len(shape.buttons):
            problems.append(f"has no button {index} (it has {len(shape.buttons)}): drop it")
            continue
        own = shape.buttons[index]
        if own.sub_type is None:
            kind = "a URL without a {{1}} suffix" if own.type == "URL" else own.type
            problems.append(f"button {index} is {kind}, which takes no parameter: drop it")
        elif own.sub_type != button.sub_type:
            problems.append(
                f"button {index} is {own.type} (sub_type {own.sub_type}); "
                f"template.buttons says {button.sub_type}"
            )
    for index, own in enumerate(shape.buttons):
        if own.required and index not in given:
            problems.append(
                f'button {index} ({own.type}) needs a parameter: add {{"index": {index}, '
                f'"sub_type": "{own.sub_type}", "param": "<{_EXAMPLE[own.sub_type or "url"]} '
                'column>"} to template.buttons'
            )
    return problems


def check_shape(spec: TemplateSpec, shape: TemplateShape, where: str) -> None:
    """Refuse a header or button the template does not have, or a missing one it needs."""
    problems = [p for p in (_header_problem(spec, shape),) if p]
    problems += _button_problems(spec, shape)
    if problems:
        raise TemplateRefusedError(
            f"{where} {'; '.join(problems)} (the template has {shape.describe()}); nothing "
            "was checked or sent"
        )
