"""The campaign's template as the campaign declares it: the body's columns, the header, the
buttons and the languages; what the Prefect form renders and refuses bad input for.

Each value is given once for the whole campaign (`link`, `text`, `value`, `filename`) or per
customer from an audience column (`link_param`, `text_param`, `param`, `filename_param`: the
name of a `param_<name>` column), never both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from connectors.vocabulary import PARAM_PREFIX
from connectors.whatsapp import Template
from connectors.whatsapp.shape import (
    BUTTON_VALUE_PROBLEM,
    MAX_BUTTONS,
    filename_problem,
    header_text_problem,
    https_link_problem,
)

LANGUAGE_CODE: Final = re.compile(r"^[a-z]{2,3}(_[A-Z]{2,4})?$")
_PARAM_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _one_of(
    value: str | None, param: str | None, field: str, *, required: bool = True
) -> str | None:
    """Why a value given both ways, or (when `required`) neither, is refused; None: fine."""
    if value is not None and param is not None:
        return f"give {field} or {field}_param, not both"
    if required and value is None and param is None:
        return f"give {field} (the same for everyone) or {field}_param (an audience column)"
    if param is not None and not _PARAM_NAME.match(param):
        return f'{field}_param "{param}" is not a column name (letters, digits, _)'
    return None


def _checked(value: str | None, problem: Callable[[str], str | None], field: str) -> None:
    """Refuse a campaign-wide value the API would refuse for every customer."""
    if value is not None and (why := problem(value)) is not None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f'{field} "{shown}" {why}')


class HeaderSpec(BaseModel):
    """The template's header: TEXT with one parameter, or IMAGE, VIDEO, DOCUMENT by link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["TEXT", "IMAGE", "VIDEO", "DOCUMENT"] = Field(
        description="The header's format, as the template was created with."
    )
    text: str | None = Field(default=None, description="TEXT: the header's parameter.")
    text_param: str | None = Field(
        default=None, description="TEXT: the parameter from the audience column `param_<name>`."
    )
    link: str | None = Field(
        default=None, description="IMAGE, VIDEO, DOCUMENT: the media's https:// link."
    )
    link_param: str | None = Field(
        default=None, description="Media: the link from the audience column `param_<name>`."
    )
    filename: str | None = Field(
        default=None, description="DOCUMENT: the file name the customer sees (optional)."
    )
    filename_param: str | None = Field(
        default=None, description="DOCUMENT: the file name from the column `param_<name>`."
    )

    @field_validator("format", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _filled_once(self) -> HeaderSpec:
        media = self.format != "TEXT"
        wanted, other = ("link", "text") if media else ("text", "link")
        for problem in (
            _one_of(getattr(self, wanted), getattr(self, f"{wanted}_param"), f"header.{wanted}"),
            _one_of(self.filename, self.filename_param, "header.filename", required=False),
        ):
            if problem:
                raise ValueError(problem)
        if getattr(self, other) is not None or getattr(self, f"{other}_param") is not None:
            article = "an" if self.format == "IMAGE" else "a"
            raise ValueError(f"{article} {self.format} header takes no header.{other}")
        if self.format != "DOCUMENT" and (self.filename or self.filename_param):
            raise ValueError(
                f"header.filename: only a DOCUMENT header has a file name, not {self.format}"
            )
        _checked(self.link, https_link_problem, "header.link")
        _checked(self.text, header_text_problem, "header.text")
        _checked(self.filename, filename_problem, "header.filename")
        return self

    @property
    def params(self) -> list[str]:
        """The names of the audience columns it reads (without `param_`)."""
        return [p for p in (self.text_param, self.link_param, self.filename_param) if p]


class ButtonSpec(BaseModel):
    """A button's parameter: a URL button's suffix, a quick reply's payload, a coupon code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, lt=MAX_BUTTONS, description="The button's position, from 0.")
    sub_type: Literal["url", "quick_reply", "copy_code"] = Field(
        description="`url` (the link's dynamic suffix), `quick_reply` (payload) or `copy_code`."
    )
    value: str | None = Field(default=None, description="The parameter, the same for everyone.")
    param: str | None = Field(
        default=None, description="The parameter from the audience column `param_<name>`."
    )

    @model_validator(mode="after")
    def _filled_once(self) -> ButtonSpec:
        problem = _one_of(self.value, self.param, f"buttons[{self.index}].value")
        if problem:
            raise ValueError(problem.replace(".value_param", ".param"))
        _checked(self.value, BUTTON_VALUE_PROBLEM[self.sub_type], f"buttons[{self.index}].value")
        return self


class TemplateSpec(BaseModel):
    """An approved template: the CRM columns that fill its body parameters, in order, its header
    and buttons, and the languages it is approved in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str | None = Field(
        default=None,
        min_length=1,
        description="The template namespace of the business (the v1 API needs it; Cloud has none).",
    )
    name: str = Field(min_length=1, description="The approved template's name.")
    language: str = Field(
        default="en",
        min_length=2,
        description="Template language code: for customers without a language column value, "
        "and the fallback for those whose language the template lacks.",
    )
    languages: list[str] = Field(
        default_factory=list,
        description="Other languages the template is approved in, e.g. `de`, `pt_BR` (v1 declares "
        "them; Cloud reads them from the business account, and each listed must be APPROVED).",
    )
    language_fallback: bool = Field(
        default=True,
        description="A customer whose language the template lacks gets `language` (true), or "
        "is `excluded_policy` / `no_template_language` (false).",
    )
    body_params: list[str] = Field(
        default_factory=list,
        description="Body parameters in order; each names a `param_<name>` column of the audience.",
    )
    header: HeaderSpec | None = Field(default=None, description="The template's header, if any.")
    buttons: list[ButtonSpec] = Field(
        default_factory=list, description="Buttons that take a parameter, by index."
    )
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"] | None = Field(
        default=None,
        description="v1 API: the template's category, for the marketing rules (Cloud reads it "
        "from the WhatsApp Business Account and refuses a different one here).",
    )
    components: list[dict[str, JsonValue]] | None = Field(
        default=None,
        description="v1 API: the template's components as Meta lists them (`HEADER` with its "
        "`format`, `BODY` with its `text`, `BUTTONS` with their `type` and `url`), so the "
        "campaign's body, header and buttons are checked against them before the run (Cloud "
        "reads them from the WhatsApp Business Account).",
    )

    @field_validator("components")
    @classmethod
    def _described(
        cls, values: list[dict[str, JsonValue]] | None
    ) -> list[dict[str, JsonValue]] | None:
        for i, component in enumerate(values or []):
            kind = str(component.get("type", "")).upper()
            if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
                raise ValueError(
                    f'template.components[{i}].type "{str(component.get("type"))[:40]}" is not '
                    "HEADER, BODY, FOOTER or BUTTONS"
                )
        return values

    @field_validator("languages")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        for code in values:
            if not LANGUAGE_CODE.match(code):
                raise ValueError(
                    f'template.languages "{code[:40]}" is not a language code like en, de or '
                    "pt_BR (as the template was created)"
                )
        return list(dict.fromkeys(values))

    @field_validator("buttons")
    @classmethod
    def _indexes_once(cls, values: list[ButtonSpec]) -> list[ButtonSpec]:
        seen = [b.index for b in values]
        twice = sorted({i for i in seen if seen.count(i) > 1})
        if twice:
            raise ValueError(f"template.buttons gives index {twice[0]} twice; one per button")
        return sorted(values, key=lambda b: b.index)

    def as_template(self) -> Template:
        """The client-side template address (the campaign's language)."""
        return self.in_language(self.language)

    def in_language(self, language: str) -> Template:
        """The client-side template address in one of its languages (v1: as declared)."""
        return Template(
            namespace=self.namespace, name=self.name, language=language, category=self.category
        )

    @property
    def address(self) -> str:
        """`namespace/name/language` (`name/language` without a namespace), for reports."""
        return "/".join(p for p in (self.namespace, self.name, self.language) if p)

    @property
    def param_columns(self) -> list[str]:
        """The frame columns that hold the body parameters."""
        return [f"{PARAM_PREFIX}{p}" for p in self.body_params]

    @property
    def all_params(self) -> list[str]:
        """Every parameter the audience must return (body, header, buttons), each once."""
        return params_of(self.body_params, self.header, self.buttons)


def params_of(
    body_params: Sequence[str], header: HeaderSpec | None, buttons: Sequence[ButtonSpec]
) -> list[str]:
    """The audience columns (without `param_`) a template reads: body, header, buttons, once."""
    from_header = header.params if header else []
    from_buttons = [b.param for b in buttons if b.param]
    return list(dict.fromkeys([*body_params, *from_header, *from_buttons]))
