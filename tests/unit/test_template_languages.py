"""Which of the template's languages each customer gets: codes read as Meta writes them, matched
exactly, by base language or by another variant, else the fallback (or none)."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.template.languages import choose_languages, language_code, match_language

APPROVED = ("en", "de", "pt_BR", "pt_PT", "es_MX")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("de-de", "de_DE"),
        (" PT_br ", "pt_BR"),
        ("EN", "en"),
        ("fil", "fil"),
        ("zh_Hant", "zh_HANT"),
        ("12", None),
        ("english", None),
        ("de_", None),
        ("", None),
        ("de_DE_x", None),
    ],
)
def test_a_language_is_written_as_meta_writes_codes(value: str, code: str | None) -> None:
    assert language_code(value) == code


@pytest.mark.parametrize(
    ("value", "chosen"),
    [
        ("de", "de"),  # exact
        ("pt-br", "pt_BR"),  # exact once written as Meta does
        ("de_AT", "de"),  # its base language
        ("en-GB", "en"),
        ("pt", "pt_BR"),  # another variant of it, the first in code order
        ("es_ES", "es_MX"),
        ("fr", None),  # none of theirs
        ("français", None),
    ],
)
def test_a_customers_language_matches_exactly_then_by_base_then_by_variant(
    value: str, chosen: str | None
) -> None:
    assert match_language(value, APPROVED, "en") == chosen


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_customer_without_a_language_gets_the_default(value: str | None) -> None:
    assert match_language(value, APPROVED, "de") == "de"


HUGE = "de" * 5000

VALUES = pd.Series(["de-DE", None, "12", HUGE, "pt", pd.NA, "fr", 7, " EN "], dtype=object)


def test_without_fallback_unmatched_customers_get_no_language_and_blanks_the_default() -> None:
    chosen = choose_languages(VALUES, APPROVED, "en", fallback=False)
    assert chosen.index.equals(VALUES.index)
    assert chosen.astype(object).where(chosen.notna(), None).tolist() == [
        "de",
        "en",
        None,
        None,
        "pt_BR",
        "en",
        None,
        None,
        "en",
    ]


def test_with_fallback_every_customer_gets_a_language() -> None:
    chosen = choose_languages(VALUES, APPROVED, "en", fallback=True)
    assert chosen.tolist() == ["de", "en", "en", "en", "pt_BR", "en", "en", "en", "en"]


def test_a_huge_text_neither_matches_nor_raises() -> None:
    assert len(HUGE) == 10_000
    assert language_code(HUGE) is None and match_language(HUGE, APPROVED, "en") is None


def test_choose_languages_keeps_the_series_index() -> None:
    values = pd.Series(["de", None], index=[10, 42], dtype="str")
    chosen = choose_languages(values, APPROVED, "en", fallback=False)
    assert chosen.to_dict() == {10: "de", 42: "en"}
