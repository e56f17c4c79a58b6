"""Opt-out keywords: the one list of replies that unsubscribe, and how a reply is compared to it.

A reply matches when, after Unicode NFKC folding (full-width letters become ASCII), case folding,
dropping punctuation, symbols, emoji and invisible marks around it, and reading inner runs of
spaces, hyphens and underscores as one space, it equals a keyword normalised the same way:
"Stop!", " stop ", "ＳＴＯＰ", "opt-out" and "«СТОП»" match; "please stop" and "unstop" do not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

DEFAULT_OPT_OUT_KEYWORDS: Final[tuple[str, ...]] = (
    # English, as carriers and Meta's own opt-out handling use them
    "STOP",
    "STOP ALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "OPT OUT",
    "OPTOUT",
    # German
    "STOPP",
    "ABMELDEN",
    # French
    "ARRET",
    "ARRÊT",
    "DÉSABONNER",
    # Spanish and Portuguese
    "BAJA",
    "PARAR",
    "CANCELAR",
    "DETENER",
    # Italian
    "ANNULLA",
    "DISISCRIVITI",
    # Russian
    "ОТПИСАТЬСЯ",
    "СТОП",
    # Arabic ("cancel", "stop")
    "إلغاء",
    "توقف",
)
"""Used when WA_OPT_OUT_KEYWORDS is unset; the setting replaces the list, it does not extend it."""

# P*: punctuation, S*: symbols and emoji, Z*: separators, C*: controls and invisible format marks
# (right-to-left marks come with Arabic replies), M*: a combining mark left alone at an edge.
_EDGE_CATEGORIES: Final = frozenset("PSZCM")
_INNER_SEPARATORS = re.compile(r"[\s\-_‐‑‒–—]+")


def normalise_reply(text: str) -> str:
    """The comparable form of a reply or keyword: folded, trimmed of punctuation, one-spaced."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and unicodedata.category(folded[start])[0] in _EDGE_CATEGORIES:
        start += 1
    while end > start and unicodedata.category(folded[end - 1])[0] in _EDGE_CATEGORIES:
        end -= 1
    # casefold can decompose (e.g. "ß" -> "ss"); NFC again so "arrêt" typed either way is one form.
    return unicodedata.normalize("NFC", _INNER_SEPARATORS.sub(" ", folded[start:end]))


def keyword_index(keywords: Iterable[str]) -> dict[str, str]:
    """Normalised form -> keyword as configured, for `matched_keyword`; empty keywords dropped."""
    index: dict[str, str] = {}
    for keyword in keywords:
        normalised = normalise_reply(keyword)
        if normalised:
            index.setdefault(normalised, keyword.strip())
    return index


def matched_keyword(text: str, index: Mapping[str, str]) -> str | None:
    """The configured keyword `text` amounts to (`index` from `keyword_index`), or None."""
    return index.get(normalise_reply(text))
