"""Template look-ups in the business account: pages followed, exact name and language, status,
category, NAMED names and POSITIONAL counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.whatsapp import TemplateInfo, errors
from connectors.whatsapp.cloud.client import CloudSender
from connectors.whatsapp.cloud.templates import template_info
from connectors.whatsapp.settings import WhatsAppSettings
from connectors.whatsapp.shape import TemplateShape

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
WABA_ID = "102290129340398"


def _json(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _lookup(
    pages: list[Any], name: str, language: str, status: int = 200
) -> tuple[TemplateInfo, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=pages[len(seen) - 1])

    settings = WhatsAppSettings.model_validate(
        {
            "api": "cloud",
            "base_url": "https://graph.test/",
            "phone_number_id": "106540352242922",
            "waba_id": WABA_ID,
            "token": "t0ken",
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.002,
        }
    )

    async def run() -> TemplateInfo:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with CloudSender(settings=settings, http=http) as client:
            return await client.lookup_template(name, language)

    return asyncio.run(run()), seen


def test_the_lookup_follows_the_pages_until_the_exact_name_and_language() -> None:
    pages = [_json("cloud_templates_page_1"), _json("cloud_templates_page_2")]
    info, seen = _lookup(pages, "order_update", "en")
    assert info == TemplateInfo(
        name="order_update",
        language="en",
        status="APPROVED",
        category="UTILITY",
        parameter_format="POSITIONAL",
        parameter_names=(),
        parameter_count=2,
        shape=TemplateShape(header="TEXT"),
    )
    assert info.approved
    assert [r.url.path for r in seen] == [f"/v23.0/{WABA_ID}/message_templates"] * 2
    first, second = (dict(r.url.params) for r in seen)
    assert first["name"] == "order_update" and "after" not in first
    assert set(first["fields"].split(",")) == {
        "name",
        "language",
        "status",
        "category",
        "parameter_format",
        "components",
    }
    assert second == {**first, "after": "aTox"}
    assert all(r.headers["Authorization"] == "Bearer t0ken" for r in seen)


def test_a_named_template_lists_its_names_once_each_in_order() -> None:
    info, _ = _lookup([_json("cloud_templates_named")], "spring_sale", "en")
    assert (info.parameter_format, info.parameter_names, info.parameter_count) == (
        "NAMED",
        ("first_name", "discount"),
        2,
    )
    assert info.category == "MARKETING"
    template = info.template()
    assert template.namespace is None and template.parameter_names == ("first_name", "discount")
    assert (template.category, template.parameter_format) == ("MARKETING", "NAMED")


def test_a_paused_template_is_found_with_its_status() -> None:
    info, _ = _lookup([_json("cloud_templates_named")], "summer_promo", "en")
    assert info.status == "PAUSED" and not info.approved
    assert info.parameter_names == ("first_name",)


@pytest.mark.parametrize(("name", "language"), [("order_update", "fr"), ("order", "en")])
def test_a_template_not_in_the_account_stops_the_run_naming_it(name: str, language: str) -> None:
    pages = [_json("cloud_templates_page_1"), _json("cloud_templates_page_2")]
    with pytest.raises(errors.TemplateUnavailable) as caught:
        _lookup(pages, name, language)
    assert caught.value.stops_at_once
    assert repr(name) in str(caught.value) and repr(language) in str(caught.value)
    assert WABA_ID in str(caught.value)


def test_an_unknown_account_names_the_variable() -> None:
    with pytest.raises(errors.UnknownObject, match="WHATSAPP_WABA_ID"):
        _lookup([_json("cloud_error_100_unknown_id")], "order_update", "en", status=400)


def test_a_page_without_a_data_list_is_asked_again() -> None:
    pages = [{"paging": {}}, _json("cloud_templates_named")]
    info, seen = _lookup(pages, "spring_sale", "en")
    assert info.name == "spring_sale" and len(seen) == 2


@pytest.mark.parametrize(
    ("item", "fmt", "names", "count"),
    [
        # no parameter_format: POSITIONAL (Meta's default) unless the text names its parameters
        ({"components": [{"type": "BODY", "text": "Hi {{1}}"}]}, "POSITIONAL", (), 1),
        ({"components": [{"type": "BODY", "text": "Hi {{ name }}"}]}, "NAMED", ("name",), 1),
        ({"components": [{"type": "HEADER", "text": "{{1}}"}]}, "POSITIONAL", (), 0),
        ({"parameter_format": "POSITIONAL"}, "POSITIONAL", (), 0),
        # no body text asked for: the examples tell
        (
            {
                "parameter_format": "named",
                "components": [
                    {
                        "type": "body",
                        "example": {
                            "body_text_named_params": [{"param_name": "a"}, {"param_name": "b"}]
                        },
                    }
                ],
            },
            "NAMED",
            ("a", "b"),
            2,
        ),
        (
            {"components": [{"type": "BODY", "example": {"body_text": [["x", "y", "z"]]}}]},
            "POSITIONAL",
            (),
            3,
        ),
    ],
)
def test_template_descriptions_are_read_whatever_fields_they_carry(
    item: dict[str, Any], fmt: str, names: tuple[str, ...], count: int
) -> None:
    info = template_info({"name": "t", "language": "en", "status": "approved", **item})
    assert (info.parameter_format, info.parameter_names, info.parameter_count) == (
        fmt,
        names,
        count,
    )
    assert info.status == "APPROVED" and info.category is None
