"""The Cloud send body and its endpoint: NAMED and POSITIONAL parameters, the callback, the route;
and the v1 body's namespace, which Cloud templates lack."""

from __future__ import annotations

import pytest

from connectors.whatsapp import Template, errors
from connectors.whatsapp.cloud.body import endpoint, template_body
from connectors.whatsapp.onprem.body import template_body as v1_body

NAMED = Template(
    None,
    "spring_sale",
    "en",
    category="MARKETING",
    parameter_format="NAMED",
    parameter_names=("first_name", "discount"),
)
POSITIONAL = Template(
    None, "order_update", "en_US", category="UTILITY", parameter_format="POSITIONAL"
)


def test_a_named_template_gets_each_parameter_name_in_the_templates_order() -> None:
    body = template_body("+4915112345678", NAMED, ["Ada", "20%"], callback="spring-2026:abc")
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "template",
        "biz_opaque_callback_data": "spring-2026:abc",
        "template": {
            "name": "spring_sale",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ada", "parameter_name": "first_name"},
                        {"type": "text", "text": "20%", "parameter_name": "discount"},
                    ],
                }
            ],
        },
    }


def test_a_positional_template_carries_no_names_and_no_namespace() -> None:
    body = template_body("4915112345678", POSITIONAL, ["A-1042", "Monday"])
    assert "biz_opaque_callback_data" not in body
    assert "namespace" not in body["template"]
    assert body["template"]["language"] == {"code": "en_US"}
    assert body["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "A-1042"},
        {"type": "text", "text": "Monday"},
    ]


def test_a_template_without_parameters_sends_no_components() -> None:
    body = template_body("4915112345678", Template(None, "welcome", "en"), [])
    assert body["template"] == {"name": "welcome", "language": {"code": "en"}}


@pytest.mark.parametrize("params", [["Ada"], ["Ada", "20%", "extra"], []])
def test_named_parameters_that_do_not_match_the_names_are_refused_before_sending(
    params: list[str],
) -> None:
    with pytest.raises(errors.TemplateMismatch, match="first_name") as caught:
        template_body("4915112345678", NAMED, params)
    assert "nothing was sent" in str(caught.value)


@pytest.mark.parametrize(
    ("category", "route", "expected"),
    [
        ("MARKETING", "auto", "marketing_messages"),
        ("marketing", "auto", "marketing_messages"),
        ("UTILITY", "auto", "messages"),
        ("AUTHENTICATION", "auto", "messages"),
        (None, "auto", "messages"),
        ("MARKETING", "messages", "messages"),
    ],
)
def test_marketing_templates_go_to_marketing_messages_unless_forced_to_messages(
    category: str | None, route: str, expected: str
) -> None:
    template = Template(None, "t", "en", category=category)
    assert endpoint(template, route) == expected  # type: ignore[arg-type]


def test_the_v1_body_is_unchanged_and_needs_a_namespace() -> None:
    body = v1_body("16315551001", Template("acme_ns", "order_update", "en"), ["Ada"])
    assert body["template"]["namespace"] == "acme_ns"
    assert body["template"]["language"] == {"policy": "deterministic", "code": "en"}
    with pytest.raises(errors.TemplateMismatch, match=r"template\.namespace"):
        v1_body("16315551001", POSITIONAL, ["A-1042"])
