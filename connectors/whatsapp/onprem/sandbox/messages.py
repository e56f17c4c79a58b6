"""Validation of a /v1/messages template send, in the order the sandbox reports problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from connectors.whatsapp.onprem.sandbox.config import TemplateKey, V1Template
from connectors.whatsapp.sandbox_components import (
    ComponentProblem,
    ProblemKind,
    check_components,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused: HTTP status plus the API's code, title and details."""

    status: int
    code: int
    title: str
    details: str


@dataclass(frozen=True, slots=True)
class TemplateSend:
    """A well-formed template send to one wa_id."""

    to: str
    template: TemplateKey
    params: tuple[str, ...]


def _missing(field: str) -> Rejection:
    return Rejection(400, 1008, "Missing parameter", f"{field} is required")


def _invalid(field: str, why: str) -> Rejection:
    return Rejection(400, 1009, "Invalid parameter", f"{field}: {why}")


def _string(obj: Mapping[str, Any], key: str, field: str) -> str | Rejection:
    value = obj.get(key)
    if value is None:
        return _missing(field)
    if not isinstance(value, str) or not value:
        return _invalid(field, "must be a non-empty string")
    return value


def parse_send(body: Any, templates: Mapping[TemplateKey, V1Template]) -> TemplateSend | Rejection:
    """Check a send body: shape (1008/1009), type, template registry (2001), count (2000), texts,
    then the header and buttons against the template (2000/1008/1009)."""
    if not isinstance(body, dict):
        return _invalid("body", "must be a JSON object")
    to = _string(body, "to", "to")
    if isinstance(to, Rejection):
        return to
    kind = _string(body, "type", "type")
    if isinstance(kind, Rejection):
        return kind
    if kind != "template":
        return _invalid("type", f"{kind!r} is not supported by the sandbox; send 'template'")
    template = body.get("template")
    if template is None:
        return _missing("template")
    if not isinstance(template, dict):
        return _invalid("template", "must be an object")
    namespace = _string(template, "namespace", "template.namespace")
    if isinstance(namespace, Rejection):
        return namespace
    name = _string(template, "name", "template.name")
    if isinstance(name, Rejection):
        return name
    language = template.get("language")
    if language is None:
        return _missing("template.language")
    if not isinstance(language, dict):
        return _invalid("template.language", "must be an object")
    code = _string(language, "code", "template.language.code")
    if isinstance(code, Rejection):
        return code
    policy = language.get("policy", "deterministic")
    if policy != "deterministic":
        return _invalid("template.language.policy", f"{policy!r}; use 'deterministic'")
    texts = _body_texts(template.get("components", []))
    if isinstance(texts, Rejection):
        return texts

    key = (namespace, name, code)
    approved = templates.get(key)
    if approved is None:
        return Rejection(400, 2001, "Template missing", f"template {'/'.join(key)} is not approved")
    expected = approved.body_params
    if len(texts) != expected:
        return Rejection(
            400,
            2000,
            "Template parameter count mismatch",
            f"template {'/'.join(key)} takes {expected} body parameters, got {len(texts)}",
        )
    for field, text in texts:
        if not text.strip():
            return _invalid(field, "empty text")
    problem = check_components(template.get("components", []), approved.shape, named=False)
    if problem is not None:
        return _component_rejection(problem)
    return TemplateSend(to, key, tuple(text for _, text in texts))


_COMPONENT_ERRORS: Final[Mapping[ProblemKind, tuple[int, str]]] = {
    "mismatch": (2000, "Template parameter count mismatch"),
    "missing": (1008, "Missing parameter"),
    "invalid": (1009, "Invalid parameter"),
}


def _component_rejection(problem: ComponentProblem) -> Rejection:
    """The v1 error of a header or button problem."""
    code, title = _COMPONENT_ERRORS[problem.kind]
    return Rejection(400, code, title, problem.details)


def _body_texts(components: Any) -> list[tuple[str, str]] | Rejection:
    """(field path, text) of every body parameter; header and button components are ignored."""
    if not isinstance(components, list):
        return _invalid("template.components", "must be a list")
    texts: list[tuple[str, str]] = []
    for i, component in enumerate(components):
        where = f"template.components[{i}]"
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            return _invalid(where, "must be an object with a type")
        if component["type"].lower() != "body":
            continue
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            return _invalid(f"{where}.parameters", "must be a list")
        for j, parameter in enumerate(parameters):
            field = f"{where}.parameters[{j}]"
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                return _invalid(f"{field}.type", "only text parameters are supported")
            text = parameter.get("text")
            if not isinstance(text, str):
                return _invalid(f"{field}.text", "must be a string")
            texts.append((f"{field}.text", text))
    return texts
