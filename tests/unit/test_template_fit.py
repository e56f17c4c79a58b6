"""The campaign's header and buttons against the template's own (`check_shape`), and the Cloud
translations a campaign sends (`cloud_fill`): refused before the run, naming what to fix."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.whatsapp.protocol import TemplateInfo
from connectors.whatsapp.shape import ButtonShape, TemplateShape
from tasks.template import TemplateRefusedError, TemplateSpec, check_shape
from tasks.template.resolve import cloud_fill

LINK = "https://cdn.example.com/spring.png"
# IMAGE header; 0 URL .../{{1}}, 1 QUICK_REPLY, 2 COPY_CODE, 3 URL without a suffix
FULL = TemplateShape(
    "IMAGE",
    (),
    (
        ButtonShape("URL", dynamic=True),
        ButtonShape("QUICK_REPLY"),
        ButtonShape("COPY_CODE"),
        ButtonShape("URL"),
    ),
)
WHERE = 'template "spring_sale" (en)'
NEEDED: list[dict[str, Any]] = [
    {"index": 0, "sub_type": "url", "param": "order_path"},
    {"index": 2, "sub_type": "copy_code", "param": "coupon"},
]


def _spec(**values: Any) -> TemplateSpec:
    return TemplateSpec.model_validate({"name": "spring_sale"} | values)


def _full(**values: Any) -> TemplateSpec:
    return _spec(**({"header": {"format": "IMAGE", "link": LINK}, "buttons": NEEDED} | values))


def _refused(spec: TemplateSpec, shape: TemplateShape) -> str:
    with pytest.raises(TemplateRefusedError) as caught:
        check_shape(spec, shape, WHERE)
    message = str(caught.value)
    assert message.startswith(WHERE) and message.endswith("nothing was checked or sent")
    return message


def test_a_campaign_matching_the_template_is_accepted_leaving_the_quick_reply_out() -> None:
    check_shape(_full(), FULL, WHERE)
    check_shape(_spec(), TemplateShape(), WHERE)
    check_shape(_spec(), TemplateShape("TEXT"), WHERE)  # a TEXT header without a parameter


def test_an_optional_quick_reply_payload_may_be_given() -> None:
    buttons = [*NEEDED, {"index": 1, "sub_type": "quick_reply", "value": "stop"}]
    check_shape(_full(buttons=buttons), FULL, WHERE)


def test_a_text_header_with_a_parameter_takes_the_campaigns_text() -> None:
    check_shape(
        _spec(header={"format": "TEXT", "text_param": "who"}), TemplateShape("TEXT", ("1",)), WHERE
    )


def test_a_header_the_template_lacks_is_refused() -> None:
    message = _refused(_spec(header={"format": "IMAGE", "link": LINK}), TemplateShape())
    assert "has no header: leave template.header out" in message
    assert "(the template has no header, no buttons)" in message


def test_a_missing_media_header_is_refused_naming_its_format() -> None:
    message = _refused(_spec(buttons=NEEDED), FULL)
    assert 'has an IMAGE header with a parameter: give template.header "IMAGE"' in message
    assert "link or link_param" in message


def test_a_missing_text_header_parameter_is_refused() -> None:
    message = _refused(_spec(), TemplateShape("TEXT", ("who",)))
    assert 'give template.header "TEXT" and text or text_param' in message


def test_a_header_of_the_wrong_format_is_refused_naming_both() -> None:
    message = _refused(_full(header={"format": "VIDEO", "link": LINK}), FULL)
    assert "has an IMAGE header; template.header.format says VIDEO" in message


def test_a_header_for_a_text_header_without_a_parameter_is_refused() -> None:
    message = _refused(_spec(header={"format": "TEXT", "text": "Spring"}), TemplateShape("TEXT"))
    assert "has a TEXT header without a parameter: leave template.header out" in message


def test_a_button_index_the_template_lacks_is_refused() -> None:
    buttons = [*NEEDED, {"index": 4, "sub_type": "quick_reply", "value": "stop"}]
    assert "has no button 4 (it has 4): drop it" in _refused(_full(buttons=buttons), FULL)


def test_a_parameter_for_a_static_url_button_is_refused() -> None:
    buttons = [*NEEDED, {"index": 3, "sub_type": "url", "value": "spring"}]
    message = _refused(_full(buttons=buttons), FULL)
    assert "button 3 is a URL without a {{1}} suffix, which takes no parameter" in message


def test_a_parameter_for_a_phone_number_button_is_refused() -> None:
    shape = TemplateShape(buttons=(ButtonShape("PHONE_NUMBER"),))
    buttons = [{"index": 0, "sub_type": "quick_reply", "value": "call"}]
    message = _refused(_spec(buttons=buttons), shape)
    assert "button 0 is PHONE_NUMBER, which takes no parameter" in message


def test_a_button_of_the_wrong_sub_type_is_refused_naming_both() -> None:
    buttons = [NEEDED[0], {"index": 2, "sub_type": "quick_reply", "param": "coupon"}]
    message = _refused(_full(buttons=buttons), FULL)
    assert (
        "button 2 is COPY_CODE (sub_type copy_code); template.buttons says quick_reply" in message
    )


@pytest.mark.parametrize(
    ("kept", "index", "words"),
    [
        (NEEDED[1], 0, 'button 0 (URL) needs a parameter: add {"index": 0, "sub_type": "url"'),
        (NEEDED[0], 2, 'button 2 (COPY_CODE) needs a parameter: add {"index": 2, "sub_type": "co'),
    ],
)
def test_a_missing_required_button_is_refused_with_the_entry_to_add(
    kept: dict[str, Any], index: int, words: str
) -> None:
    assert words in _refused(_full(buttons=[kept]), FULL)


def test_every_problem_is_named_at_once() -> None:
    message = _refused(_spec(), FULL)
    assert "IMAGE header" in message and "button 0 (URL)" in message
    assert "button 2 (COPY_CODE)" in message


def _info(language: str, status: str = "APPROVED", shape: TemplateShape = FULL) -> TemplateInfo:
    return TemplateInfo("spring_sale", language, status, "MARKETING", "POSITIONAL", (), 0, shape)


ACCOUNT = "WhatsApp Business Account 1022"


def test_the_campaign_language_missing_is_refused_naming_the_accounts_languages() -> None:
    with pytest.raises(TemplateRefusedError) as caught:
        cloud_fill(_full(language="es"), [_info("en"), _info("pt_BR")], ACCOUNT)
    message = str(caught.value)
    assert 'template "spring_sale" in language "es" is not in ' + ACCOUNT in message
    assert "(its languages there: en, pt_BR)" in message


def test_an_account_without_the_template_is_refused_saying_none() -> None:
    with pytest.raises(TemplateRefusedError, match=r"its languages there: none"):
        cloud_fill(_full(), [], ACCOUNT)


def test_approved_other_languages_are_used_and_pending_ones_are_not() -> None:
    infos = [
        _info("de"),
        _info("en"),
        _info("fr", "PENDING"),
        _info("pt_BR"),
        _info("it", "REJECTED"),
    ]
    fill = cloud_fill(_full(), infos, ACCOUNT)
    assert list(fill.templates) == ["en", "de", "pt_BR"]
    assert fill.template.language == "en" and fill.templates["pt_BR"].language == "pt_BR"
    assert fill.header is not None and fill.header.link == LINK


def test_listed_languages_are_the_only_ones_used() -> None:
    infos = [_info("de"), _info("en"), _info("pt_BR")]
    assert list(cloud_fill(_full(languages=["pt_BR"]), infos, ACCOUNT).templates) == ["en", "pt_BR"]


def test_a_listed_language_that_is_pending_is_refused_naming_its_status() -> None:
    with pytest.raises(TemplateRefusedError) as caught:
        cloud_fill(_full(languages=["fr"]), [_info("en"), _info("fr", "PENDING")], ACCOUNT)
    assert 'template "spring_sale" (fr) is PENDING in the business account' in str(caught.value)


def test_a_listed_language_the_account_lacks_is_refused_naming_it() -> None:
    with pytest.raises(TemplateRefusedError, match=r'in language "de" is not in'):
        cloud_fill(_full(languages=["de"]), [_info("en")], ACCOUNT)


def test_a_translation_whose_header_and_buttons_differ_is_refused_naming_its_language() -> None:
    other = TemplateShape("IMAGE", (), FULL.buttons[:2])
    with pytest.raises(TemplateRefusedError) as caught:
        cloud_fill(_full(), [_info("en"), _info("de", shape=other)], ACCOUNT)
    message = str(caught.value)
    assert message.startswith('template "spring_sale" (de) has no button 2 (it has 2)')
