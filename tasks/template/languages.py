"""Which of the template's languages each customer gets: their own when the template is approved
in it, else the campaign's fallback (or none, when the campaign allows no fallback).

A customer's language is matched as Meta names translations: `de-de`, `DE_de` and `de_DE` are
`de_DE`; then its base language (`de_AT` -> `de`); then another variant of it (`pt` -> `pt_BR`,
the first in code order). A customer without a language gets the campaign's.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

import pandas as pd

_CODE: Final = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2,4}))?$")


def language_code(value: str) -> str | None:
    """A language as Meta writes its codes (`pt_BR`), None when it is not a language code."""
    found = _CODE.match(value.strip())
    if found is None:
        return None
    base, region = found.groups()
    return base.lower() if region is None else f"{base.lower()}_{region.upper()}"


def match_language(value: str | None, approved: Collection[str], default: str) -> str | None:
    """The approved language for one customer's `value`; `default` when they have none; None
    when the template has none of theirs (the caller falls back or excludes)."""
    if value is None or not value.strip():
        return default
    code = language_code(value)
    if code is None:
        return None
    if code in approved:
        return code
    base = code.split("_", 1)[0]
    if base in approved:
        return base
    variants = sorted(a for a in approved if a.split("_", 1)[0] == base)
    return variants[0] if variants else None


def choose_languages(
    values: pd.Series, approved: Collection[str], default: str, *, fallback: bool
) -> pd.Series:
    """Each customer's template language (missing: none approved and no fallback), matched
    once per distinct value: an audience has few languages, however many customers."""
    text = values.astype("str")
    distinct = text.dropna().unique()
    chosen = {v: match_language(v, approved, default) for v in distinct}
    if fallback:
        chosen = {v: c or default for v, c in chosen.items()}
    out = text.map(chosen).astype("str")
    return out.where(text.notna(), default)
