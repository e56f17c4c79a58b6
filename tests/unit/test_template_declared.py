"""A v1 campaign's declaration of its template (`template.components`, as Meta lists them):
the campaign's body, header and buttons checked against it before the run, as on Cloud."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.whatsapp import WhatsAppSettings
from tasks.template import TemplateRefusedError, TemplateSpec, resolve_template

SHIPPED = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Hi {{1}}, your order has shipped."},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Stop updates"},
        ],
    },
]
V1 = WhatsAppSettings.model_validate(
    {"base_url": "http://127.0.0.1:9", "username": "u", "password": "p"}
)


def _spec(**values: Any) -> TemplateSpec:
    base: dict[str, Any] = {
        "namespace": "acme_ns",
        "name": "order_shipped",
        "body_params": ["first_name"],
        "header": {"format": "IMAGE", "link_param": "banner"},
        "buttons": [{"index": 0, "sub_type": "url", "param": "track"}],
        "components": SHIPPED,
    }
    return TemplateSpec.model_validate(base | values)


def test_a_campaign_that_fills_what_its_declaration_needs_is_accepted() -> None:
    fill = resolve_template(_spec(languages=["de"]), V1)
    assert sorted(fill.templates) == ["de", "en"]
    assert fill.template.namespace == "acme_ns"


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"buttons": []}, r"button 0 \(URL\) needs a parameter"),
        ({"header": None}, "has an IMAGE header with a parameter"),
        ({"body_params": []}, "takes 1 positional parameters; template.body_params gives 0"),
        (
            {
                "buttons": [
                    {"index": 0, "sub_type": "url", "param": "t"},
                    {"index": 2, "sub_type": "url", "param": "u"},
                ]
            },
            "has no button 2",
        ),
    ],
)
def test_a_campaign_that_does_not_fit_its_declaration_is_refused_naming_the_component(
    values: dict[str, Any], names: str
) -> None:
    with pytest.raises(TemplateRefusedError, match=names):
        resolve_template(_spec(**values), V1)


def test_without_a_declaration_the_campaign_is_taken_as_it_is() -> None:
    assert resolve_template(_spec(components=None, buttons=[]), V1).template.name == "order_shipped"


def test_the_cloud_api_refuses_a_declaration_it_reads_from_the_account_itself() -> None:
    cloud = WhatsAppSettings.model_validate(
        {
            "api": "cloud",
            "base_url": "http://127.0.0.1:9",
            "phone_number_id": "1",
            "waba_id": "2",
            "token": "t",
        }
    )
    with pytest.raises(TemplateRefusedError, match=r"leave template\.components out"):
        resolve_template(_spec(), cloud)


def test_a_component_type_meta_does_not_list_is_refused_in_the_form() -> None:
    with pytest.raises(ValidationError, match=r'template.components\[1\].type "HEDAER"'):
        _spec(components=[SHIPPED[1], {"type": "HEDAER", "format": "IMAGE"}])
