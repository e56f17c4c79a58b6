"""The Cloud sandbox's template registry and its paging: pure functions, no server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectors.whatsapp.cloud.sandbox.templates import (
    DEFAULT_TEMPLATES,
    CloudButton,
    CloudHeader,
    CloudTemplate,
    PageError,
    cursor,
    page,
)
from connectors.whatsapp.shape import ButtonShape, TemplateShape

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
    assert [t["name"] for t in second["data"]] == [
        "summer_promo",
        "account_alert",
        "order_shipped",
        "order_shipped",
    ]
    assert "next" in second["paging"]
    last = len(DEFAULT_TEMPLATES) - 1
    final = page(DEFAULT_TEMPLATES, {**query, "after": cursor(last - 1)}, URL)
    assert [t["name"] for t in final["data"]] == ["product_video"]
    assert "next" not in final["paging"]
    assert page(DEFAULT_TEMPLATES, {"after": cursor(last)}, URL) == {"data": []}


def test_filters_match_a_name_part_and_exact_language_status_category() -> None:
    def names(**query: str) -> list[tuple[str, str]]:
        return [(t["name"], t["language"]) for t in page(DEFAULT_TEMPLATES, query, URL)["data"]]

    assert names(name="order_up") == [("order_update", "en"), ("order_update", "de")]
    assert names(name="order_update", language="de") == [("order_update", "de")]
    assert names(status="PAUSED") == [("summer_promo", "en")]
    assert names(status="PENDING") == [("order_shipped", "fr")]
    assert names(category="MARKETING", status="APPROVED") == [
        ("spring_sale", "en"),
        ("spring_coupon", "en"),
    ]


@pytest.mark.parametrize(
    "query",
    [{"limit": "0"}, {"limit": "1001"}, {"after": "%%%"}, {"after": "bm9wZQ"}],
    ids=["zero_limit", "over_1000", "not_base64", "not_a_cursor"],
)
def test_bad_paging_parameters_raise_page_error(query: dict[str, str]) -> None:
    with pytest.raises(PageError):
        page(DEFAULT_TEMPLATES, query, URL)


def test_header_and_buttons_give_the_shape_the_sandbox_checks() -> None:
    by_key = {(t.name, t.language): t for t in DEFAULT_TEMPLATES}
    assert by_key["order_shipped", "de"].shape == TemplateShape(
        header="IMAGE", buttons=(ButtonShape("URL", dynamic=True), ButtonShape("QUICK_REPLY"))
    )
    assert by_key["spring_coupon", "en"].shape == TemplateShape(
        header="TEXT", header_params=("1",), buttons=(ButtonShape("COPY_CODE"), ButtonShape("URL"))
    )
    assert by_key["spring_coupon", "en"].shape.buttons[1].sub_type is None
    assert by_key["terms_update", "en"].parameter_format == "NAMED"
    assert by_key["terms_update", "en"].shape == TemplateShape(header="DOCUMENT")
    assert by_key["welcome", "en"].shape == TemplateShape()


def test_a_named_header_makes_the_template_named_and_lists_its_example_by_name() -> None:
    template = CloudTemplate(
        name="t",
        language="en",
        category="UTILITY",
        body="No parameters here.",
        header=CloudHeader(format="TEXT", text="Hi {{first_name}}", example="Ada"),
    )
    assert template.parameter_format == "NAMED"
    assert template.shape.header_params == ("first_name",)
    assert template.as_json(["components"])["components"][0] == {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Hi {{first_name}}",
        "example": {"header_text_named_params": [{"param_name": "first_name", "example": "Ada"}]},
    }


@pytest.mark.parametrize(
    ("parts", "why"),
    [
        ({"header": {"format": "IMAGE", "text": "x"}}, "has no text"),
        ({"header": {"format": "TEXT"}}, "needs its text"),
        ({"header": {"format": "TEXT", "text": "{{1}} {{2}}", "example": "a"}}, "at most one"),
        ({"header": {"format": "TEXT", "text": "Hi {{2}}", "example": "a"}}, "is {{1}}"),
        ({"header": {"format": "TEXT", "text": "Hi {{1}}"}}, "an example exactly"),
        ({"header": {"format": "GIF"}}, "header format"),
        ({"button": {"type": "URL", "text": "Go"}}, "a url exactly"),
        ({"button": {"type": "URL", "text": "Go", "url": "https://a.example/{{1}}"}}, "example"),
        ({"button": {"type": "COPY_CODE"}}, "an example exactly"),
        ({"button": {"type": "QUICK_REPLY"}}, "needs its text"),
        ({"button": {"type": "PHONE_NUMBER", "text": "Call"}}, "phone_number"),
        ({"button": {"type": "FLOW", "text": "Go"}}, "button type"),
    ],
    ids=[
        "media_with_text",
        "text_without_text",
        "two_placeholders",
        "positional_not_1",
        "no_header_example",
        "unknown_format",
        "url_without_url",
        "dynamic_url_without_example",
        "copy_code_without_example",
        "quick_reply_without_text",
        "phone_without_number",
        "unknown_button",
    ],
)
def test_a_malformed_header_or_button_is_refused_naming_why(
    parts: dict[str, dict[str, Any]], why: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        if "header" in parts:
            CloudHeader(**parts["header"])
        else:
            CloudButton(**parts["button"])


def test_a_template_mixing_placeholder_styles_across_header_and_body_is_refused() -> None:
    header = CloudHeader(format="TEXT", text="Hi {{first_name}}", example="Ada")
    with pytest.raises(ValueError, match="mixes"):
        CloudTemplate(
            name="t",
            language="en",
            category="UTILITY",
            body="Order {{1}}",
            examples=("A",),
            header=header,
        )
    quick = CloudButton(type="QUICK_REPLY", text="Yes")
    with pytest.raises(ValueError, match="at most 10 buttons"):
        CloudTemplate(name="t", language="en", category="UTILITY", body="Hi", buttons=(quick,) * 11)
