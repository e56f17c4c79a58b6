"""A send's components around the body on both APIs (header, buttons by index), each customer's
extras and template from the campaign's `Fill`, and a listed template's header and buttons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from connectors.whatsapp.cloud.body import template_body as cloud_body
from connectors.whatsapp.cloud.templates import template_info
from connectors.whatsapp.components import ButtonFill, Extras, HeaderFill
from connectors.whatsapp.onprem.body import template_body as v1_body
from connectors.whatsapp.protocol import Template, TemplateInfo
from connectors.whatsapp.shape import ButtonShape, TemplateShape
from tasks.template import Fill, TemplateSpec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
LINK = "https://cdn.example.com/spring.png"
V1 = Template("acme_ns", "spring_sale", "en")
CLOUD = Template(None, "spring_sale", "en", parameter_format="POSITIONAL")
BUTTONS = (
    ButtonFill(2, "copy_code", "SPRING15"),
    ButtonFill(0, "url", "orders/A17"),
    ButtonFill(1, "quick_reply", "stop-promos"),
)


def _json(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _v1(extras: Extras, params: tuple[str, ...] = ("Ada",)) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = v1_body("+15550001111", V1, params, extras)["template"][
        "components"
    ]
    return components


def _cloud(extras: Extras, template: Template = CLOUD, params: tuple[str, ...] = ("Ada",)) -> Any:
    return cloud_body("+15550001111", template, params, extras=extras)["template"]


@pytest.mark.parametrize(
    ("header", "parameter"),
    [
        (HeaderFill("IMAGE", link=LINK), {"type": "image", "image": {"link": LINK}}),
        (HeaderFill("VIDEO", link=LINK), {"type": "video", "video": {"link": LINK}}),
        (HeaderFill("DOCUMENT", link=LINK), {"type": "document", "document": {"link": LINK}}),
        (
            HeaderFill("DOCUMENT", link=LINK, filename="invoice.pdf"),
            {"type": "document", "document": {"link": LINK, "filename": "invoice.pdf"}},
        ),
        (
            HeaderFill("IMAGE", link=LINK, filename="ignored.png"),
            {"type": "image", "image": {"link": LINK}},
        ),
        (HeaderFill("TEXT", text="Spring"), {"type": "text", "text": "Spring"}),
    ],
)
def test_the_header_comes_first_on_both_apis(header: HeaderFill, parameter: dict[str, Any]) -> None:
    expected = [
        {"type": "header", "parameters": [parameter]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}]},
    ]
    assert _v1(Extras(header)) == expected
    assert _cloud(Extras(header))["components"] == expected


def test_a_named_cloud_text_header_carries_its_parameter_name() -> None:
    template = Template(
        None,
        "order_ready",
        "en",
        parameter_format="NAMED",
        parameter_names=("order_id",),
        header_names=("first_name",),
    )
    components = _cloud(Extras(HeaderFill("TEXT", text="Ada")), template, ("A17",))["components"]
    assert components == [
        {
            "type": "header",
            "parameters": [{"type": "text", "text": "Ada", "parameter_name": "first_name"}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "A17", "parameter_name": "order_id"}],
        },
    ]


def test_buttons_follow_the_body_by_index_as_strings_with_their_parameter_type() -> None:
    expected_buttons = [
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "orders/A17"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "stop-promos"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "SPRING15"}],
        },
    ]
    for components in (_v1(Extras(buttons=BUTTONS)), _cloud(Extras(buttons=BUTTONS))["components"]):
        assert [c["type"] for c in components] == ["body", "button", "button", "button"]
        assert components[1:] == expected_buttons


def test_buttons_alone_make_the_components_without_a_body() -> None:
    one = (ButtonFill(0, "url", "orders/A17"),)
    assert [c["type"] for c in _cloud(Extras(buttons=one), params=())["components"]] == ["button"]


def test_a_cloud_send_with_nothing_filled_has_no_components_key() -> None:
    template = _cloud(Extras(), params=())
    assert template == {"name": "spring_sale", "language": {"code": "en"}}


def _spec(**values: Any) -> TemplateSpec:
    return TemplateSpec.model_validate(
        {"name": "spring_sale", "namespace": "acme_ns", "body_params": ["first_name"]} | values
    )


def test_extras_mix_campaign_wide_values_and_each_customers_columns() -> None:
    spec = _spec(
        header={"format": "DOCUMENT", "link": LINK, "filename_param": "file"},
        buttons=[
            {"index": 2, "sub_type": "quick_reply", "param": "answer"},
            {"index": 0, "sub_type": "url", "value": "spring"},
            {"index": 1, "sub_type": "copy_code", "param": "coupon"},
        ],
    )
    columns = {"file": ["a.pdf", None], "coupon": ["SAVE1", "SAVE2"], "answer": [None, "stop"]}
    frame = pd.DataFrame(
        {f"param_{c}": pd.Series(v, index=[7, 3], dtype="str") for c, v in columns.items()}
    )
    extras = list(Fill.declared(spec).extras_of(frame))
    assert extras == [
        Extras(
            HeaderFill("DOCUMENT", link=LINK, filename="a.pdf"),
            (ButtonFill(0, "url", "spring"), ButtonFill(1, "copy_code", "SAVE1")),
        ),
        Extras(
            HeaderFill("DOCUMENT", link=LINK),
            (
                ButtonFill(0, "url", "spring"),
                ButtonFill(1, "copy_code", "SAVE2"),
                ButtonFill(2, "quick_reply", "stop"),
            ),
        ),
    ]


def test_a_text_header_from_a_column_fills_each_customers_text() -> None:
    fill = Fill.declared(_spec(header={"format": "TEXT", "text_param": "city"}))
    frame = pd.DataFrame({"param_city": pd.Series(["Porto", "Lyon"], dtype="str")})
    assert [e.header for e in fill.extras_of(frame)] == [
        HeaderFill("TEXT", text="Porto"),
        HeaderFill("TEXT", text="Lyon"),
    ]
    assert fill.columns == ["param_first_name", "param_city"]


def test_a_template_without_header_or_buttons_has_no_extras() -> None:
    frame = pd.DataFrame({"param_first_name": ["Ada", "Bo"]})
    assert list(Fill.declared(_spec()).extras_of(frame)) == [Extras(), Extras()]


def test_each_row_gets_the_template_in_its_language() -> None:
    fill = Fill.declared(_spec(languages=["de", "pt_BR"]))
    languages = pd.Series(["de", None, "pt_BR", "en", "fr"], dtype="str")
    frame = pd.DataFrame({"template_language": languages})
    assert [t.language for t in fill.templates_of(frame)] == ["de", "en", "pt_BR", "en", "en"]
    assert all(t.namespace == "acme_ns" for t in fill.templates_of(frame))
    without = pd.DataFrame({"param_first_name": ["Ada", "Bo"]})
    assert [t.language for t in fill.templates_of(without)] == ["en", "en"]


def test_a_listed_image_template_with_buttons_reads_its_shape() -> None:
    info = template_info(_json("cloud_template_header_buttons"))
    assert info == TemplateInfo(
        name="spring_sale_image",
        language="pt_BR",
        status="APPROVED",
        category="MARKETING",
        parameter_format="POSITIONAL",
        parameter_count=2,
        shape=TemplateShape(
            "IMAGE",
            (),
            (
                ButtonShape("URL", dynamic=True),
                ButtonShape("QUICK_REPLY"),
                ButtonShape("COPY_CODE"),
                ButtonShape("URL", dynamic=False),
            ),
        ),
    )
    assert [b.sub_type for b in info.shape.buttons] == ["url", "quick_reply", "copy_code", None]
    assert [b.required for b in info.shape.buttons] == [True, False, True, False]


def test_a_listed_named_text_header_gives_the_send_its_parameter_name() -> None:
    info = template_info(_json("cloud_template_named_text_header"))
    assert info.shape == TemplateShape("TEXT", ("first_name",), (ButtonShape("PHONE_NUMBER"),))
    assert info.shape.buttons[0].sub_type is None
    template = info.template()
    assert (template.parameter_names, template.header_names) == (("order_id",), ("first_name",))
    header = _cloud(Extras(HeaderFill("TEXT", text="Ada")), template, ("A17",))["components"][0]
    assert header["parameters"] == [{"type": "text", "text": "Ada", "parameter_name": "first_name"}]
