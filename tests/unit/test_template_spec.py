"""The campaign's template as declared: header, buttons and languages refused on the form, each
refusal naming the field and the value, before a run exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.crm import Audience
from tasks.campaign import Campaign
from tasks.template import ButtonSpec, HeaderSpec, TemplateSpec

IMAGE = "https://cdn.example.com/spring.png"


def _spec(**values: Any) -> TemplateSpec:
    return TemplateSpec.model_validate(
        {"name": "spring_sale", "body_params": ["first_name"]} | values
    )


def _refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        _spec(**values)
    return str(caught.value)


def test_a_media_header_by_link_or_by_column_and_buttons_by_value_or_column_are_accepted() -> None:
    spec = _spec(
        header={"format": "image", "link": IMAGE},
        buttons=[
            {"index": 1, "sub_type": "copy_code", "value": "SPRING15"},
            {"index": 0, "sub_type": "url", "param": "order_path"},
        ],
    )
    assert spec.header == HeaderSpec(format="IMAGE", link=IMAGE)
    assert [(b.index, b.sub_type) for b in spec.buttons] == [(0, "url"), (1, "copy_code")]


def test_an_http_link_is_refused_naming_header_link_and_the_link() -> None:
    message = _refusal(header={"format": "IMAGE", "link": "http://cdn.example.com/a.png"})
    assert 'header.link "http://cdn.example.com/a.png" is not an https:// URL' in message


def test_a_constant_coupon_of_sixteen_characters_is_refused_naming_the_button_and_value() -> None:
    message = _refusal(buttons=[{"index": 2, "sub_type": "copy_code", "value": "SPRING2026SAVE15"}])
    assert 'buttons[2].value "SPRING2026SAVE15" has 16 characters; at most 15' in message
    assert _spec(buttons=[{"index": 2, "sub_type": "copy_code", "value": "SPRING2026SAVE1"}])


def test_a_constant_url_suffix_with_a_space_is_refused_naming_the_button_and_value() -> None:
    with pytest.raises(ValidationError) as caught:
        ButtonSpec(index=0, sub_type="url", value="orders/A 17")
    assert 'buttons[0].value "orders/A 17" holds characters a URL cannot carry' in str(caught.value)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (
            {"format": "IMAGE", "link": IMAGE, "link_param": "banner"},
            "give header.link or header.link_param, not both",
        ),
        ({"format": "VIDEO"}, "give header.link (the same for everyone) or header.link_param"),
        ({"format": "TEXT"}, "give header.text (the same for everyone) or header.text_param"),
        ({"format": "IMAGE", "link": IMAGE, "text": "Hi"}, "an IMAGE header takes no header.text"),
        (
            {"format": "DOCUMENT", "link_param": "invoice", "text_param": "who"},
            "a DOCUMENT header takes no header.text",
        ),
        ({"format": "TEXT", "text": "Hi", "link": IMAGE}, "a TEXT header takes no header.link"),
        ({"format": "IMAGE", "link_param": "bad name"}, 'header.link_param "bad name" is not a'),
    ],
)
def test_a_header_filled_both_ways_neither_way_or_with_the_wrong_part_is_refused(
    header: dict[str, str], words: str
) -> None:
    assert words in _refusal(header=header)


@pytest.mark.parametrize("filename", [{"filename": "a.png"}, {"filename_param": "file"}])
def test_a_file_name_on_an_image_header_is_refused_naming_the_format(
    filename: dict[str, str],
) -> None:
    message = _refusal(header={"format": "IMAGE", "link": IMAGE} | filename)
    assert "header.filename: only a DOCUMENT header has a file name, not IMAGE" in message
    assert message.splitlines()[1] == "header"


def test_a_document_header_takes_a_file_name_checked_like_the_api() -> None:
    spec = _spec(header={"format": "DOCUMENT", "link": IMAGE, "filename": "invoice.pdf"})
    assert spec.header is not None and spec.header.filename == "invoice.pdf"
    message = _refusal(header={"format": "DOCUMENT", "link": IMAGE, "filename": "../x.pdf"})
    assert 'header.filename "../x.pdf" holds a control character or a path separator' in message


def test_a_constant_header_text_over_sixty_characters_is_refused() -> None:
    assert _spec(header={"format": "TEXT", "text": "x" * 60})
    assert 'header.text "' in _refusal(header={"format": "TEXT", "text": "x" * 61})


@pytest.mark.parametrize(
    ("button", "words"),
    [
        ({"index": 0, "sub_type": "url"}, "give buttons[0].value (the same for everyone) or"),
        (
            {"index": 1, "sub_type": "quick_reply", "value": "yes", "param": "answer"},
            "give buttons[1].value or buttons[1].param, not both",
        ),
        ({"index": 10, "sub_type": "url", "value": "x"}, "buttons.0.index"),
        ({"index": 0, "sub_type": "phone_number", "value": "x"}, "buttons.0.sub_type"),
    ],
)
def test_a_button_without_its_value_or_out_of_range_is_refused(
    button: dict[str, object], words: str
) -> None:
    assert words in _refusal(buttons=[button])


def test_a_button_index_given_twice_is_refused_naming_it() -> None:
    message = _refusal(
        buttons=[
            {"index": 1, "sub_type": "quick_reply", "value": "yes"},
            {"index": 1, "sub_type": "url", "param": "path"},
        ]
    )
    assert "template.buttons gives index 1 twice; one per button" in message


def test_buttons_are_kept_in_index_order() -> None:
    given = [
        {"index": 3, "sub_type": "quick_reply", "value": "stop"},
        {"index": 0, "sub_type": "url", "param": "path"},
        {"index": 1, "sub_type": "copy_code", "value": "SAVE"},
    ]
    assert [b.index for b in _spec(buttons=given).buttons] == [0, 1, 3]


@pytest.mark.parametrize("code", ["english", "de-DE", "pt_br", "", "12"])
def test_a_languages_entry_that_is_not_a_language_code_is_refused_naming_it(code: str) -> None:
    assert f'template.languages "{code}" is not a language code' in _refusal(languages=["de", code])


def test_languages_are_kept_once_each_in_order() -> None:
    assert _spec(languages=["pt_BR", "de", "pt_BR"]).languages == ["pt_BR", "de"]


def test_all_params_lists_body_header_and_button_columns_once_each() -> None:
    spec = _spec(
        body_params=["first_name", "code"],
        header={"format": "DOCUMENT", "link_param": "invoice", "filename_param": "first_name"},
        buttons=[
            {"index": 0, "sub_type": "url", "param": "order_path"},
            {"index": 1, "sub_type": "copy_code", "param": "code"},
            {"index": 2, "sub_type": "quick_reply", "value": "stop"},
        ],
    )
    assert spec.all_params == ["first_name", "code", "invoice", "order_path"]
    assert spec.param_columns == ["param_first_name", "param_code"]


def test_a_header_column_the_table_audience_does_not_map_is_refused_naming_it() -> None:
    columns = {"customer_id": "id", "phone_raw": "mobile", "param_first_name": "fname"}
    template = {
        "namespace": "acme_ns",
        "name": "spring_sale",
        "body_params": ["first_name"],
        "header": {"format": "IMAGE", "link_param": "banner"},
    }
    message = (
        'template parameter "banner" is not returned by the audience: map a column as param_banner'
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        Campaign(campaign_id="c1", template=template, audience=Audience(table="t", columns=columns))
    mapped = Audience(table="t", columns=columns | {"param_banner": "banner_url"})
    campaign = Campaign(campaign_id="c1", template=template, audience=mapped)
    assert campaign.template.all_params == ["first_name", "banner"]


def test_a_link_that_cannot_be_parsed_is_refused_naming_header_link() -> None:
    message = _refusal(header={"format": "VIDEO", "link": "https://cdn]example.com/a.mp4"})
    assert 'header.link "https://cdn]example.com/a.mp4" is not a URL' in message
