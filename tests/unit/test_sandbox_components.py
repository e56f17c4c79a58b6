"""The sandboxes' header and button check: each rule on plain calls, no server."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.whatsapp.components import ButtonFill, Extras, HeaderFill, components
from connectors.whatsapp.sandbox_components import check_components
from connectors.whatsapp.shape import ButtonShape, TemplateShape

SHIPPED = TemplateShape(
    header="IMAGE", buttons=(ButtonShape("URL", dynamic=True), ButtonShape("QUICK_REPLY"))
)
COUPON = TemplateShape(
    header="TEXT", header_params=("1",), buttons=(ButtonShape("COPY_CODE"), ButtonShape("URL"))
)
NAMED_TEXT = TemplateShape(header="TEXT", header_params=("first_name",))
TEXT_WITHOUT_PARAMETER = TemplateShape(header="TEXT")
TERMS = TemplateShape(header="DOCUMENT")
VIDEO = TemplateShape(header="VIDEO", buttons=(ButtonShape("QUICK_REPLY"),))
BODY_ONLY = TemplateShape()
BODY = {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}
LINK = "https://cdn.example.com/a.jpg"


def media(kind: str, **fields: Any) -> dict[str, Any]:
    """A header component of one media parameter under `kind`."""
    return {"type": "header", "parameters": [{"type": kind, kind: {"link": LINK, **fields}}]}


def text_header(text: object = "Ada", **fields: Any) -> dict[str, Any]:
    """A TEXT header component."""
    return {"type": "header", "parameters": [{"type": "text", "text": text, **fields}]}


def button(sub_type: str, index: object, kind: str, value: object) -> dict[str, Any]:
    """A button component with one parameter `{type: kind, kind: value}`."""
    parameter = {"type": kind, kind: value}
    return {"type": "button", "sub_type": sub_type, "index": index, "parameters": [parameter]}


def track(suffix: object = "A1", index: object = "0") -> dict[str, Any]:
    return button("url", index, "text", suffix)


def coupon(code: object = "SPRING20") -> dict[str, Any]:
    return button("copy_code", "0", "coupon_code", code)


def kind_of(
    given: list[Any], shape: TemplateShape, *, named: bool = False
) -> tuple[str, str] | None:
    problem = check_components(given, shape, named=named)
    return None if problem is None else (problem.kind, problem.details)


# Accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "extras", "names"),
    [
        (
            SHIPPED,
            Extras(HeaderFill("IMAGE", link=LINK), (ButtonFill(0, "url", "A1"),)),
            (),
        ),
        (
            SHIPPED,
            Extras(
                HeaderFill("IMAGE", link=LINK),
                (ButtonFill(1, "quick_reply", "stop"), ButtonFill(0, "url", "A1%20B")),
            ),
            (),
        ),
        (
            COUPON,
            Extras(HeaderFill("TEXT", text="Ada"), (ButtonFill(0, "copy_code", "SPRING20"),)),
            (),
        ),
        (NAMED_TEXT, Extras(HeaderFill("TEXT", text="Ada")), ("first_name",)),
        (TERMS, Extras(HeaderFill("DOCUMENT", link=LINK, filename="terms.pdf")), ()),
        (TERMS, Extras(HeaderFill("DOCUMENT", link=LINK)), ()),
        (VIDEO, Extras(HeaderFill("VIDEO", link=LINK)), ()),
        (TEXT_WITHOUT_PARAMETER, Extras(), ()),
        (BODY_ONLY, Extras(), ()),
    ],
    ids=[
        "image_and_url",
        "quick_reply_too",
        "text_and_coupon",
        "named_text",
        "document_with_filename",
        "document",
        "video_without_payload",
        "text_without_parameter",
        "body_only",
    ],
)
def test_what_the_client_builds_is_accepted(
    shape: TemplateShape, extras: Extras, names: tuple[str, ...]
) -> None:
    given = components([BODY["parameters"][0]], extras, header_names=names)
    assert check_components(given, shape, named=bool(names)) is None


def test_an_int_index_and_upper_case_types_are_accepted() -> None:
    given = [
        {**media("image"), "type": "HEADER"},
        BODY,
        {**track(index=0), "type": "Button", "sub_type": "URL"},
    ]
    assert check_components(given, SHIPPED, named=False) is None


# Component types and the header -------------------------------------------------------------


def test_an_unknown_component_type_is_invalid() -> None:
    assert kind_of([BODY, {"type": "footer"}], BODY_ONLY) == (
        "invalid",
        "component 1: type 'footer'; use header, body or button",
    )
    assert kind_of(["header"], BODY_ONLY) == (
        "invalid",
        "component 0: must be an object with a type",
    )


@pytest.mark.parametrize(
    ("given", "shape", "kind", "fragment"),
    [
        ([media("image")], BODY_ONLY, "mismatch", "the template has no header"),
        ([text_header()], TEXT_WITHOUT_PARAMETER, "mismatch", "has no parameter"),
        ([{"type": "header", "parameters": []}], TERMS, "mismatch", "exactly 1, got 0"),
        ([{"type": "header"}], TERMS, "mismatch", "exactly 1, got 0"),
        (
            [{"type": "header", "parameters": [{"type": "text", "text": "a"}] * 2}],
            COUPON,
            "mismatch",
            "exactly 1, got 2",
        ),
        ([media("image"), media("image")], SHIPPED, "invalid", "given twice"),
        ([{"type": "header", "parameters": ["x"]}], TERMS, "invalid", "must be an object"),
    ],
    ids=[
        "header_template_lacks",
        "text_header_without_parameter",
        "no_parameters",
        "parameters_absent",
        "two_parameters",
        "two_headers",
        "parameter_not_object",
    ],
)
def test_a_header_that_does_not_fit_is_refused(
    given: list[Any], shape: TemplateShape, kind: str, fragment: str
) -> None:
    problem = check_components(given, shape, named=False)
    assert problem is not None and problem.kind == kind
    assert problem.details.startswith("header") and fragment in problem.details


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (media("video"), "header.parameters[0].type: 'video'; the IMAGE header takes 'image'"),
        (text_header(), "header.parameters[0].type: 'text'"),
        ({"type": "header", "parameters": [{"type": "image"}]}, "header.parameters[0].image:"),
        (media("image", link=None), "header.parameters[0].image.link: must be a string"),
        (media("image", link="http://cdn.example.com/a.jpg"), "link is not an https:// URL"),
        (media("image", link="https://cdn.example.com/a b.jpg"), "link holds characters"),
        (media("image", filename="a.jpg"), "only a document header takes a file name"),
        (media("image", link="https://[cdn/a.jpg"), "link is not a URL"),
    ],
    ids=[
        "wrong_media_type",
        "text_for_image",
        "no_media_object",
        "no_link",
        "http_link",
        "space_in_link",
        "filename_on_image",
        "unclosed_ipv6_bracket",
    ],
)
def test_a_malformed_media_header_is_invalid(given: dict[str, Any], fragment: str) -> None:
    problem = check_components([given, BODY, track()], SHIPPED, named=False)
    assert problem is not None and problem.kind == "invalid"
    assert fragment in problem.details


@pytest.mark.parametrize(
    ("filename", "fragment"),
    [("", "is empty"), ("a/b.pdf", "path separator"), ("x" * 241, "at most 240"), (7, "string")],
    ids=["empty", "path", "too_long", "not_a_string"],
)
def test_a_bad_document_filename_is_invalid(filename: object, fragment: str) -> None:
    problem = check_components([media("document", filename=filename)], TERMS, named=False)
    assert problem is not None and problem.kind == "invalid"
    assert "header.parameters[0].document.filename" in problem.details
    assert fragment in problem.details


def test_video_filename_is_invalid_too() -> None:
    problem = check_components([media("video", filename="a.mp4")], VIDEO, named=False)
    assert problem is not None and problem.kind == "invalid"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("   ", "is empty"),
        ("x" * 61, "at most 60"),
        ("a\nb", "newline"),
        ("a     b", "more than 4 spaces"),
        (None, "must be a string"),
    ],
    ids=["blank", "too_long", "newline", "five_spaces", "not_a_string"],
)
def test_a_bad_header_text_is_invalid(text: object, fragment: str) -> None:
    problem = check_components([text_header(text), coupon()], COUPON, named=False)
    assert problem is not None and problem.kind == "invalid"
    assert problem.details.startswith("header.parameters[0].text") and fragment in problem.details


def test_a_named_header_needs_its_parameter_name() -> None:
    assert kind_of([text_header()], NAMED_TEXT, named=True) == (
        "invalid",
        "header.parameters[0].parameter_name: required on a NAMED template ('first_name')",
    )
    assert kind_of([text_header(parameter_name="name")], NAMED_TEXT, named=True) == (
        "mismatch",
        "header.parameters[0].parameter_name: 'name'; the header's parameter is 'first_name'",
    )
    positional = kind_of([text_header(parameter_name="first_name"), coupon()], COUPON)
    assert positional is not None and positional[0] == "mismatch"


@pytest.mark.parametrize(
    ("given", "shape", "details"),
    [
        (
            [BODY, track()],
            SHIPPED,
            "header: required by the template's IMAGE header; send its link",
        ),
        ([BODY], TERMS, "header: required by the template's DOCUMENT header; send its link"),
        ([coupon()], COUPON, "header: the template's TEXT header has a parameter; send its text"),
        ([media("image")], SHIPPED, "button 0 (url): required; send its URL suffix"),
        ([text_header()], COUPON, "button 0 (copy_code): required; send its coupon code"),
    ],
    ids=["image", "document", "text_parameter", "url_suffix", "coupon"],
)
def test_a_required_header_or_button_left_out_is_missing(
    given: list[Any], shape: TemplateShape, details: str
) -> None:
    assert kind_of(given, shape) == ("missing", details)


def test_quick_reply_payloads_are_optional() -> None:
    assert kind_of([media("video")], VIDEO) is None


# Buttons --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kind", "fragment"),
    [
        (button("phone", "0", "text", "x"), "invalid", "sub_type 'phone'"),
        ({"type": "button", "index": "0"}, "invalid", "sub_type None"),
        (track(index="first"), "invalid", "index 'first'"),
        (track(index="-1"), "invalid", "index '-1'"),
        (track(index=True), "invalid", "index True"),
        (track(index=2), "mismatch", "button 2 (url): the template has 2 button(s)"),
        (
            button("quick_reply", "0", "payload", "x"),
            "mismatch",
            "button 0 (quick_reply): the template's button 0 is URL (dynamic)",
        ),
        (button("url", "0", "payload", "x"), "invalid", "'payload'; a url button takes 'text'"),
        (track(suffix="A 1"), "invalid", "button 0 (url).parameters[0].text holds characters"),
        (track(suffix=""), "invalid", "text is empty"),
        (track(suffix=3), "invalid", "must be a string"),
        (
            button("quick_reply", "1", "payload", "x" * 1025),
            "invalid",
            "at most 1024",
        ),
        (
            {"type": "button", "sub_type": "url", "index": "0", "parameters": []},
            "mismatch",
            "exactly 1, got 0",
        ),
    ],
    ids=[
        "unknown_sub_type",
        "no_sub_type",
        "index_not_digits",
        "negative_index",
        "bool_index",
        "index_beyond_buttons",
        "sub_type_of_another_button",
        "wrong_parameter_type",
        "suffix_with_space",
        "empty_suffix",
        "suffix_not_string",
        "payload_too_long",
        "no_parameter",
    ],
)
def test_a_button_that_does_not_fit_is_refused(
    given: dict[str, Any], kind: str, fragment: str
) -> None:
    problem = check_components([media("image"), BODY, given], SHIPPED, named=False)
    assert problem is not None and problem.kind == kind
    assert fragment in problem.details


def test_a_parameter_for_a_static_url_button_is_a_mismatch() -> None:
    static = button("url", "1", "text", "spring")
    assert kind_of([text_header(), coupon(), static], COUPON) == (
        "mismatch",
        "button 1 (url): the template's button 1 is URL and takes nothing",
    )


def test_a_repeated_index_is_invalid() -> None:
    assert kind_of([media("image"), track(), track(index=0)], SHIPPED) == (
        "invalid",
        "button 0 (url): index given twice",
    )


@pytest.mark.parametrize(
    ("code", "kind"),
    [("SPRING20", None), ("X" * 15, None), ("X" * 16, "invalid"), ("", "invalid")],
    ids=["ok", "fifteen", "sixteen", "empty"],
)
def test_a_coupon_has_1_to_15_characters(code: str, kind: str | None) -> None:
    problem = check_components([text_header(), coupon(code)], COUPON, named=False)
    assert (problem and problem.kind) == kind
    if problem is not None:
        assert problem.details.startswith("button 0 (copy_code).parameters[0].coupon_code")
