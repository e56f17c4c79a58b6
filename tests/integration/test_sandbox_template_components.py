"""Both sandboxes over real HTTP hold templates with headers and buttons and refuse sends whose
header or button components do not fit them, with each API's code: v1 2000 / 1008 / 1009, Cloud
132000 / 131008 / 131009 (mismatch / missing / invalid)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from connectors.whatsapp.cloud.sandbox import (
    CloudButton,
    CloudHeader,
    CloudSandboxConfig,
    CloudTemplate,
    RunningCloudSandbox,
    start_cloud_sandbox,
)
from connectors.whatsapp.cloud.sandbox.config import (
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    DEFAULT_WABA_ID,
)
from connectors.whatsapp.onprem.sandbox import (
    RunningSandbox,
    SandboxConfig,
    V1Template,
    start_sandbox,
)
from connectors.whatsapp.shape import ButtonShape, TemplateShape

Kind = Literal["mismatch", "missing", "invalid"]
API_KEY = {"D360-API-KEY": "sandbox-api-key"}
USER = "+16315551001"
LINK = "https://cdn.example.com/media/a.jpg"
BODY_TEXTS = {"order_shipped": 1, "terms_update": 1, "spring_coupon": 0, "product_video": 0}


@dataclass
class Api:
    """One sandbox and how to send it a raw template body and read its answer."""

    name: Literal["v1", "cloud"]
    http: httpx.Client
    codes: dict[Kind, int]
    sandbox: RunningSandbox | RunningCloudSandbox

    def send(
        self,
        template: str,
        *extra: dict[str, Any],
        language: str = "en",
        texts: int | None = None,
    ) -> httpx.Response:
        """POST the template send: its body texts (`texts`, else as many as it takes; named on
        the Cloud's NAMED terms_update), then the `extra` header and button components."""
        count = BODY_TEXTS.get(template, 0) if texts is None else texts
        parameters = [{"type": "text", "text": "Ada"}] * count
        if self.name == "cloud" and template == "terms_update":
            parameters = [{**p, "parameter_name": "first_name"} for p in parameters]
        components = [{"type": "body", "parameters": parameters}] if parameters else []
        components += list(extra)
        if self.name == "v1":
            body = {
                "to": USER[1:],
                "type": "template",
                "template": {
                    "namespace": "acme_ns",
                    "name": template,
                    "language": {"policy": "deterministic", "code": language},
                    "components": components,
                },
            }
            return self.http.post("/v1/messages", headers=API_KEY, json=body)
        body = {
            "messaging_product": "whatsapp",
            "to": USER,
            "type": "template",
            "template": {
                "name": template,
                "language": {"code": language},
                "components": components,
            },
        }
        return self.http.post(f"/v23.0/{DEFAULT_PHONE_NUMBER_ID}/messages", json=body)

    def code(self, answer: httpx.Response) -> tuple[int, int]:
        """(HTTP status, API error code) of a refusal."""
        payload = answer.json()
        if self.name == "v1":
            return answer.status_code, int(payload["errors"][0]["code"])
        return answer.status_code, int(payload["error"]["code"])

    def sent(self) -> int:
        """How many sends the sandbox accepted."""
        return len(self.sandbox.state.messages_sent())


@pytest.fixture(scope="module")
def v1_sandbox() -> Iterator[RunningSandbox]:
    config = SandboxConfig(rate_limit_messages=None, rate_limit_other=None, rate_limit_login=None)
    with start_sandbox(config) as running:
        yield running


@pytest.fixture(scope="module")
def cloud_sandbox() -> Iterator[RunningCloudSandbox]:
    config = CloudSandboxConfig(throughput_per_s=None, pair_interval_s=0)
    with start_cloud_sandbox(config) as running:
        yield running


@pytest.fixture(params=["v1", "cloud"])
def api(
    request: pytest.FixtureRequest,
    v1_sandbox: RunningSandbox,
    cloud_sandbox: RunningCloudSandbox,
) -> Iterator[Api]:
    """Each sandbox in turn, its record cleared; on v1 the user's number checked first."""
    if request.param == "v1":
        v1_sandbox.state.reset()
        with httpx.Client(base_url=v1_sandbox.url, timeout=5.0) as http:
            checked = {"blocking": "wait", "contacts": [USER]}
            assert http.post("/v1/contacts", headers=API_KEY, json=checked).status_code == 200
            codes: dict[Kind, int] = {"mismatch": 2000, "missing": 1008, "invalid": 1009}
            yield Api("v1", http, codes, v1_sandbox)
        return
    cloud_sandbox.state.reset()
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with httpx.Client(base_url=cloud_sandbox.url, headers=auth, timeout=5.0) as http:
        yield Api(
            "cloud", http, {"mismatch": 132000, "missing": 131008, "invalid": 131009}, cloud_sandbox
        )


def media(kind: str, link: str = LINK, **fields: Any) -> dict[str, Any]:
    """A media header component: one parameter of `kind` holding its link."""
    return {"type": "header", "parameters": [{"type": kind, kind: {"link": link, **fields}}]}


def text_header(text: str = "Ada") -> dict[str, Any]:
    return {"type": "header", "parameters": [{"type": "text", "text": text}]}


def button(sub_type: str, index: str, kind: str, value: str) -> dict[str, Any]:
    parameter = {"type": kind, kind: value}
    return {"type": "button", "sub_type": sub_type, "index": index, "parameters": [parameter]}


def track(suffix: str = "A1", index: str = "0") -> dict[str, Any]:
    """order_shipped's dynamic URL button's suffix."""
    return button("url", index, "text", suffix)


def coupon(code: str = "SPRING20") -> dict[str, Any]:
    """spring_coupon's COPY_CODE button's code."""
    return button("copy_code", "0", "coupon_code", code)


# Accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "components", "language"),
    [
        ("order_shipped", [media("image"), track()], "en"),
        (
            "order_shipped",
            [media("image"), track("A1%2FB"), button("quick_reply", "1", "payload", "stop")],
            "de",
        ),
        ("product_video", [media("video", "https://cdn.example.com/v.mp4")], "en"),
        ("product_video", [media("video"), button("quick_reply", "0", "payload", "more")], "en"),
        ("terms_update", [media("document", "https://cdn.example.com/t.pdf")], "en"),
        ("terms_update", [media("document", filename="terms 2027.pdf")], "en"),
        ("spring_coupon", [text_header("Ada"), coupon()], "en"),
        ("spring_coupon", [text_header("Ada Lovelace"), coupon("X" * 15)], "en"),
    ],
    ids=[
        "image_header_and_url_suffix",
        "quick_reply_payload_de",
        "video_header",
        "video_and_quick_reply",
        "document_header",
        "document_with_filename",
        "text_header_and_coupon",
        "coupon_of_15",
    ],
)
def test_a_send_that_fills_the_header_and_buttons_is_accepted(
    api: Api, template: str, components: list[dict[str, Any]], language: str
) -> None:
    answer = api.send(template, *components, language=language)
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["messages"][0]["id"]
    assert api.sent() == 1


# Refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "components", "kind"),
    [
        ("welcome", [media("image")], "mismatch"),
        ("order_shipped", [track()], "missing"),
        ("terms_update", [], "missing"),
        ("spring_coupon", [coupon()], "missing"),
        ("order_shipped", [media("image")], "missing"),
        ("spring_coupon", [text_header()], "missing"),
        ("spring_coupon", [text_header(), coupon(), button("url", "1", "text", "x")], "mismatch"),
        ("order_shipped", [media("video"), track()], "invalid"),
        ("order_shipped", [media("image", "http://cdn.example.com/a.jpg"), track()], "invalid"),
        ("order_shipped", [media("image", filename="a.jpg"), track()], "invalid"),
        ("order_shipped", [media("image"), track("A 1")], "invalid"),
        ("spring_coupon", [text_header(), coupon("X" * 16)], "invalid"),
        ("order_shipped", [media("image"), track(), track(index="5")], "mismatch"),
        ("order_shipped", [media("image"), button("quick_reply", "0", "payload", "x")], "mismatch"),
        ("order_shipped", [media("image"), track(), track(index="0")], "invalid"),
        ("welcome", [{"type": "footer", "text": "Bye"}], "invalid"),
    ],
    ids=[
        "header_the_template_lacks",
        "missing_image_header",
        "missing_document_header",
        "missing_text_header",
        "missing_url_suffix",
        "missing_coupon",
        "parameter_for_static_url_button",
        "wrong_media_type",
        "http_link",
        "filename_on_image",
        "suffix_with_space",
        "coupon_of_16",
        "index_beyond_the_buttons",
        "index_of_another_button_type",
        "repeated_index",
        "unknown_component_type",
    ],
)
def test_a_send_whose_components_do_not_fit_is_refused_with_the_apis_code(
    api: Api, template: str, components: list[dict[str, Any]], kind: Kind
) -> None:
    answer = api.send(template, *components)
    assert api.code(answer) == (400, api.codes[kind]), answer.text
    assert api.sent() == 0


def test_the_refusal_names_the_component_and_field(api: Api) -> None:
    answer = api.send("order_shipped", media("image", "http://cdn.example.com/a.jpg"), track())
    assert "header.parameters[0].image.link is not an https:// URL" in answer.text
    answer = api.send("spring_coupon", text_header(), coupon(), button("url", "1", "text", "x"))
    assert "button 1 (url)" in answer.text


def test_header_and_button_parameters_do_not_count_as_body_parameters(api: Api) -> None:
    answer = api.send("order_shipped", media("image"), track(), texts=0)
    assert api.code(answer) == (400, api.codes["mismatch"])
    assert "body" in answer.text
    assert api.sent() == 0


# The Cloud listing ----------------------------------------------------------------------------

SHIPPED_HEADER = {
    "type": "HEADER",
    "format": "IMAGE",
    "example": {"header_handle": ["https://scontent.example/h.jpg"]},
}
SHIPPED_BUTTONS = {
    "type": "BUTTONS",
    "buttons": [
        {
            "type": "URL",
            "text": "Track",
            "url": "https://shop.example.com/track/{{1}}",
            "example": ["https://shop.example.com/track/A1"],
        },
        {"type": "QUICK_REPLY", "text": "Stop updates"},
    ],
}


def test_the_cloud_lists_header_body_and_buttons_with_fr_pending(
    cloud_sandbox: RunningCloudSandbox,
) -> None:
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with httpx.Client(base_url=cloud_sandbox.url, headers=auth, timeout=5.0) as http:
        answer = http.get(
            f"/v23.0/{DEFAULT_WABA_ID}/message_templates", params={"name": "order_shipped"}
        )
        coupon_answer = http.get(
            f"/v23.0/{DEFAULT_WABA_ID}/message_templates",
            params={"name": "spring_coupon", "fields": "components"},
        )
    assert answer.status_code == 200, answer.text
    listed = answer.json()["data"]
    assert [(t["language"], t["status"]) for t in listed] == [
        ("en", "APPROVED"),
        ("de", "APPROVED"),
        ("fr", "PENDING"),
    ]
    assert {(t["category"], t["parameter_format"]) for t in listed} == {("UTILITY", "POSITIONAL")}
    assert listed[0]["components"] == [
        SHIPPED_HEADER,
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order has shipped.",
            "example": {"body_text": [["Ada"]]},
        },
        SHIPPED_BUTTONS,
    ]
    assert listed[1]["components"][1]["text"] == "Hallo {{1}}, Ihre Bestellung ist unterwegs."
    assert coupon_answer.json()["data"][0]["components"] == [
        {
            "type": "HEADER",
            "format": "TEXT",
            "text": "Spring sale, {{1}}!",
            "example": {"header_text": ["Ada"]},
        },
        {"type": "BODY", "text": "Use the code below for 20% off everything."},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "COPY_CODE", "example": "SPRING20"},
                {"type": "URL", "text": "Shop", "url": "https://shop.example.com/spring"},
            ],
        },
    ]


def test_order_shipped_in_fr_is_not_sendable_there_is_only_a_pending_one(api: Api) -> None:
    answer = api.send("order_shipped", media("image"), track(), language="fr")
    expected = (400, 2001) if api.name == "v1" else (404, 132001)
    assert api.code(answer) == expected


# Custom templates -----------------------------------------------------------------------------


def test_a_custom_v1_template_declares_its_header_and_buttons() -> None:
    welcome_back = V1Template(
        0, TemplateShape(header="TEXT", header_params=("1",), buttons=(ButtonShape("COPY_CODE"),))
    )
    config = SandboxConfig(templates={("acme_ns", "welcome_back", "en"): welcome_back})
    with start_sandbox(config) as running, httpx.Client(base_url=running.url) as http:
        api = Api("v1", http, {"mismatch": 2000, "missing": 1008, "invalid": 1009}, running)
        checked = {"blocking": "wait", "contacts": [USER]}
        assert http.post("/v1/contacts", headers=API_KEY, json=checked).status_code == 200
        assert api.code(api.send("welcome_back", text_header())) == (400, 1008)
        assert api.send("welcome_back", text_header(), coupon()).status_code == 201
        assert api.code(api.send("order_shipped", media("image"), track())) == (400, 2001)


def test_a_custom_named_cloud_template_lists_and_checks_its_header_name() -> None:
    welcome_back = CloudTemplate(
        name="welcome_back",
        language="en",
        category="MARKETING",
        body="Good to see you again.",
        header=CloudHeader(format="TEXT", text="Hi {{first_name}}", example="Ada"),
        buttons=(CloudButton(type="PHONE_NUMBER", text="Call us", phone_number="+15550783881"),),
    )
    config = CloudSandboxConfig(templates=(welcome_back,), pair_interval_s=0)
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with (
        start_cloud_sandbox(config) as running,
        httpx.Client(base_url=running.url, headers=auth) as http,
    ):
        api = Api(
            "cloud", http, {"mismatch": 132000, "missing": 131008, "invalid": 131009}, running
        )
        listed = http.get(f"/v23.0/{DEFAULT_WABA_ID}/message_templates").json()["data"][0]
        named = {"type": "header", "parameters": [{"type": "text", "text": "Ada"}]}
        refused = api.send("welcome_back", named)
        named["parameters"][0]["parameter_name"] = "first_name"
        accepted = api.send("welcome_back", named)
        phone = api.send("welcome_back", named, button("url", "0", "text", "x"))
    assert listed["parameter_format"] == "NAMED"
    assert listed["components"][0]["example"] == {
        "header_text_named_params": [{"param_name": "first_name", "example": "Ada"}]
    }
    assert listed["components"][2]["buttons"] == [
        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550783881"}
    ]
    assert api.code(refused) == (400, 131009)
    assert accepted.status_code == 200, accepted.text
    assert api.code(phone) == (400, 132000)
