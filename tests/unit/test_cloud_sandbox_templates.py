"""The Cloud sandbox's template registry and its paging: pure functions, no server."""

from __future__ import annotations

import pytest

from connectors.whatsapp.cloud.sandbox.templates import (
    DEFAULT_TEMPLATES,
    CloudTemplate,
    PageError,
    cursor,
    page,
)

URL = "http://sandbox/v23.0/1/message_templates"


def test_parameters_and_format_come_from_the_body_text() -> None:
    by_key = {(t.name, t.language): t for t in DEFAULT_TEMPLATES}
    assert by_key["spring_sale", "en"].parameter_format == "NAMED"
    assert by_key["spring_sale", "en"].parameters == ("first_name",)
    assert by_key["order_update", "de"].parameter_format == "POSITIONAL"
    assert by_key["order_update", "de"].parameters == ("1",)
    assert by_key["welcome", "en"].parameters == ()
    assert by_key["summer_promo", "en"].status == "PAUSED"
    assert len({t.id for t in DEFAULT_TEMPLATES}) == len(DEFAULT_TEMPLATES)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"body": "Hi {{name}} {{1}}", "examples": ("a", "b")}, "mixes"),
        ({"body": "Hi {{name}}"}, "one example per parameter"),
        ({"body": "Hi", "category": "PROMO"}, "category"),
    ],
    ids=["mixed_placeholders", "missing_example", "unknown_category"],
)
def test_a_malformed_template_is_refused_naming_why(fields: dict[str, object], why: str) -> None:
    values: dict[str, object] = {"name": "t", "language": "en", "category": "UTILITY", **fields}
    with pytest.raises(ValueError, match=why):
        CloudTemplate(**values)  # type: ignore[arg-type]


def test_pages_follow_the_after_cursor_and_keep_the_query_but_not_the_token() -> None:
    query = {"limit": "4", "access_token": "secret", "fields": "name"}
    first = page(DEFAULT_TEMPLATES, query, URL)
    assert [t["name"] for t in first["data"]] == [
        "order_update",
        "order_update",
        "spring_sale",
        "welcome",
    ]
    assert first["paging"]["cursors"] == {"before": cursor(0), "after": cursor(3)}
    assert "secret" not in first["paging"]["next"] and "fields=name" in first["paging"]["next"]
    second = page(DEFAULT_TEMPLATES, {**query, "after": cursor(3)}, URL)
    assert [t["name"] for t in second["data"]] == ["summer_promo", "account_alert"]
    assert "next" not in second["paging"]
    assert page(DEFAULT_TEMPLATES, {"after": cursor(5)}, URL) == {"data": []}


def test_filters_match_a_name_part_and_exact_language_status_category() -> None:
    def names(**query: str) -> list[tuple[str, str]]:
        return [(t["name"], t["language"]) for t in page(DEFAULT_TEMPLATES, query, URL)["data"]]

    assert names(name="order") == [("order_update", "en"), ("order_update", "de")]
    assert names(name="order_update", language="de") == [("order_update", "de")]
    assert names(status="PAUSED") == [("summer_promo", "en")]
    assert names(category="MARKETING", status="APPROVED") == [("spring_sale", "en")]


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "1001"}, {"after": "%%%"}, {"after": "bm9wZQ"}],
    ids=["zero_limit", "over_1000", "not_base64", "not_a_cursor"],
)
def test_bad_paging_parameters_raise_page_error(query: dict[str, str]) -> None:
    with pytest.raises(PageError):
        page(DEFAULT_TEMPLATES, query, URL)
