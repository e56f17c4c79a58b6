"""How each customer's message is filled: the template in their language, the body's texts, the
header and the buttons, from campaign-wide values or their own audience columns."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from connectors.vocabulary import PARAM_PREFIX, TEMPLATE_LANGUAGE
from connectors.whatsapp import Template
from connectors.whatsapp.components import NO_EXTRAS, ButtonFill, Extras, HeaderFill
from tasks.template.spec import ButtonSpec, HeaderSpec, TemplateSpec, params_of


@dataclass(frozen=True)
class Fill:
    """The template's approved translations, language -> `Template` (the campaign's own
    `language` always among them), and where each part of a message comes from."""

    templates: Mapping[str, Template]
    language: str
    body_params: tuple[str, ...] = ()
    header: HeaderSpec | None = None
    buttons: tuple[ButtonSpec, ...] = ()
    fallback: bool = True

    @classmethod
    def of(cls, spec: TemplateSpec, templates: Mapping[str, Template]) -> Fill:
        """The campaign's template in these translations."""
        return cls(
            dict(templates),
            spec.language,
            tuple(spec.body_params),
            spec.header,
            tuple(spec.buttons),
            spec.language_fallback,
        )

    @classmethod
    def declared(cls, spec: TemplateSpec) -> Fill:
        """As the campaign declares it (v1: the API cannot be asked)."""
        languages = [spec.language, *spec.languages]
        return cls.of(spec, {code: spec.in_language(code) for code in languages})

    @classmethod
    def plain(cls, template: Template, body_params: Sequence[str] = ()) -> Fill:
        """One template in one language with body parameters only."""
        return cls({template.language: template}, template.language, tuple(body_params))

    @property
    def template(self) -> Template:
        """The template in the campaign's own language."""
        return self.templates[self.language]

    @property
    def body_columns(self) -> list[str]:
        """The frame columns of the body's parameters, in order."""
        return [f"{PARAM_PREFIX}{p}" for p in self.body_params]

    @property
    def columns(self) -> list[str]:
        """Every frame column the audience must return for the template."""
        params = params_of(self.body_params, self.header, self.buttons)
        return [f"{PARAM_PREFIX}{p}" for p in params]

    def templates_of(self, frame: pd.DataFrame) -> Iterator[Template]:
        """Each row's template, in the language chosen for it (the campaign's when none was)."""
        if TEMPLATE_LANGUAGE not in frame.columns or len(self.templates) == 1:
            return itertools.repeat(self.template, len(frame))
        chosen = frame[TEMPLATE_LANGUAGE].astype("str").fillna(self.language)
        return (self.templates.get(code, self.template) for code in chosen)

    def extras_of(self, frame: pd.DataFrame) -> Iterable[Extras]:
        """Each row's header and buttons, made as the sender asks for them."""
        header, buttons = self.header, self.buttons
        if header is None and not buttons:
            return itertools.repeat(NO_EXTRAS, len(frame))
        rows = len(frame)

        def values(constant: str | None, param: str | None) -> Iterable[str | None]:
            if param is None:
                return itertools.repeat(constant, rows)
            column = frame[f"{PARAM_PREFIX}{param}"].astype("str")
            return column.astype(object).where(column.notna(), None).tolist()

        heads: Iterable[HeaderFill | None] = itertools.repeat(None, rows)
        if header is not None:
            main = (
                values(header.text, header.text_param)
                if header.format == "TEXT"
                else values(header.link, header.link_param)
            )
            names = values(header.filename, header.filename_param)
            heads = (
                HeaderFill(header.format, text=v, filename=n)
                if header.format == "TEXT"
                else HeaderFill(header.format, link=v, filename=n)
                for v, n in zip(main, names, strict=True)
            )
        button_values = [values(b.value, b.param) for b in buttons]
        per_row: Iterable[tuple[str | None, ...]] = (
            zip(*button_values, strict=True) if button_values else itertools.repeat((), rows)
        )
        return (
            Extras(
                head,
                tuple(
                    ButtonFill(b.index, b.sub_type, v)
                    for b, v in zip(buttons, given, strict=True)
                    if v is not None
                ),
            )
            for head, given in zip(heads, per_row, strict=True)
        )
