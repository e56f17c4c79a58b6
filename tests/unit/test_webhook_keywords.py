"""Opt-out keywords: which replies unsubscribe, whatever their case, width and punctuation."""

from __future__ import annotations

import pytest

from connectors.webhooks.keywords import (
    DEFAULT_OPT_OUT_KEYWORDS,
    keyword_index,
    matched_keyword,
    normalise_reply,
)

INDEX = keyword_index(DEFAULT_OPT_OUT_KEYWORDS)


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        ("  Stop!  ", "STOP"),
        ("STOP.", "STOP"),
        ("ＳＴＯＰ", "STOP"),
        ("stop 🛑", "STOP"),
        ("Stop   all", "STOP ALL"),
        ("opt-out", "OPT OUT"),
        ("Opt Out", "OPT OUT"),
        ("optout", "OPTOUT"),
        ("Unsubscribe", "UNSUBSCRIBE"),
        ("stopp", "STOPP"),
        ("Abmelden!", "ABMELDEN"),
        ("arrêt", "ARRÊT"),
        ("Arret", "ARRET"),
        ("désabonner", "DÉSABONNER"),
        ("¡Baja!", "BAJA"),
        ("cancelar", "CANCELAR"),
        ("Annulla", "ANNULLA"),
        ("«СТОП»", "СТОП"),
        ("отписаться", "ОТПИСАТЬСЯ"),
        ("\u200fتوقف", "توقف"),
        ("إلغاء", "إلغاء"),
    ],
)
def test_opt_out_replies_match_whatever_their_case_and_punctuation(
    reply: str, keyword: str
) -> None:
    assert matched_keyword(reply, INDEX) == keyword


@pytest.mark.parametrize(
    "reply", ["please stop", "unstop", "stop it", "start", "", "!!!", "s t o p", "stopstop"]
)
def test_other_replies_are_not_opt_outs(reply: str) -> None:
    assert matched_keyword(reply, INDEX) is None


def test_decomposed_accents_match_composed_keywords() -> None:
    assert normalise_reply("ARRE\u0302T") == normalise_reply("ARRÊT") == "arrêt"


def test_the_index_keeps_keywords_as_configured_and_drops_empty_ones() -> None:
    assert keyword_index([" Genug ", "", "!!!", "GENUG"]) == {"genug": "Genug"}
