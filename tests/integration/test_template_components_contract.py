"""The senders' header and button components against both sandboxes over real HTTP (issue 20):
what the clients build for each component is accepted, and a component the template does not
take, or a value the API refuses, comes back as the error class and code of its API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.whatsapp import Template, WhatsAppSettings, open_sender
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    RunningCloudSandbox,
    start_cloud_sandbox,
)
from connectors.whatsapp.components import NO_EXTRAS, ButtonFill, Extras, HeaderFill
from connectors.whatsapp.errors import InvalidRequest, TemplateMismatch, WhatsAppError
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tests.helpers import sandbox_settings

IMAGE = HeaderFill("IMAGE", link="https://cdn.example.com/parcel.jpg")
TRACK = ButtonFill(0, "url", "A-1042")
STOP = ButtonFill(1, "quick_reply", "STOP_UPDATES")
COUPON = ButtonFill(0, "copy_code", "SPRING20")

# (template, body parameters, extras): each accepted by both APIs.
ACCEPTED = {
    "image header, URL suffix, quick reply": (
        "order_shipped",
        ["Ada"],
        Extras(IMAGE, (TRACK, STOP)),
    ),
    "quick reply left out": ("order_shipped", ["Ada"], Extras(IMAGE, (TRACK,))),
    "text header, coupon code": (
        "spring_coupon",
        [],
        Extras(HeaderFill("TEXT", text="Ada"), (COUPON,)),
    ),
    "document header with a file name": (
        "terms_update",
        ["Ada"],
        Extras(HeaderFill("DOCUMENT", link="https://cdn.example.com/t.pdf", filename="Terms.pdf")),
    ),
    "document header without one": (
        "terms_update",
        ["Ada"],
        Extras(HeaderFill("DOCUMENT", link="https://cdn.example.com/t.pdf")),
    ),
    "video header": (
        "product_video",
        [],
        Extras(
            HeaderFill("VIDEO", link="https://cdn.example.com/v.mp4"),
            (ButtonFill(0, "quick_reply", "MORE"),),
        ),
    ),
}

# (template, body, extras, v1 code, Cloud code, error class)
REFUSED = {
    "a header the template lacks": ("welcome", [], Extras(IMAGE), 2000, 132000, TemplateMismatch),
    "no header where one is needed": (
        "order_shipped",
        ["Ada"],
        Extras(None, (TRACK,)),
        1008,
        131008,
        InvalidRequest,
    ),
    "no URL suffix where one is needed": (
        "order_shipped",
        ["Ada"],
        Extras(IMAGE),
        1008,
        131008,
        InvalidRequest,
    ),
    "a parameter for a static URL button": (
        "spring_coupon",
        [],
        Extras(HeaderFill("TEXT", text="Ada"), (COUPON, ButtonFill(1, "url", "x"))),
        2000,
        132000,
        TemplateMismatch,
    ),
    "a button index the template lacks": (
        "order_shipped",
        ["Ada"],
        Extras(IMAGE, (TRACK, ButtonFill(5, "quick_reply", "x"))),
        2000,
        132000,
        TemplateMismatch,
    ),
    "a video for an image header": (
        "order_shipped",
        ["Ada"],
        Extras(HeaderFill("VIDEO", link="https://cdn.example.com/v.mp4"), (TRACK,)),
        1009,
        131009,
        InvalidRequest,
    ),
    "an http:// link": (
        "order_shipped",
        ["Ada"],
        Extras(HeaderFill("IMAGE", link="http://cdn.example.com/p.jpg"), (TRACK,)),
        1009,
        131009,
        InvalidRequest,
    ),
    "a suffix with a space": (
        "order_shipped",
        ["Ada"],
        Extras(IMAGE, (ButtonFill(0, "url", "A 1042"),)),
        1009,
        131009,
        InvalidRequest,
    ),
    "a coupon of 16 characters": (
        "spring_coupon",
        [],
        Extras(HeaderFill("TEXT", text="Ada"), (ButtonFill(0, "copy_code", "S" * 16),)),
        1009,
        131009,
        InvalidRequest,
    ),
}


@pytest.fixture(scope="module")
def v1() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(always_valid=True, rate_limit_messages=None)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloudSandbox]:
    with start_cloud_sandbox(
        CloudSandboxConfig(throughput_per_s=None, pair_interval_s=0)
    ) as sandbox:
        yield sandbox


def _cloud_settings(sandbox: RunningCloudSandbox) -> WhatsAppSettings:
    config = sandbox.config
    return WhatsAppSettings.model_validate(
        {
            "api": "cloud",
            "base_url": sandbox.url,
            "phone_number_id": config.phone_number_id,
            "waba_id": config.waba_id,
            "token": config.tokens[0],
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
        }
    )


def _send(settings: WhatsAppSettings, name: str, body: list[str], extras: Extras, to: str) -> Any:
    """One send of `name` in English: the receipt, or the error it raised."""

    async def run() -> Any:
        async with open_sender(settings) as sender:
            if settings.api == "cloud":
                template = (await sender.lookup_template(name, "en")).template()  # type: ignore[attr-defined]
            else:
                template = Template("acme_ns", name, "en")
            try:
                return await sender.send_template(
                    to, template, body, extras=extras, number=f"+{to}"
                )
            except WhatsAppError as exc:
                return exc

    return asyncio.run(run())


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_each_component_the_template_takes_is_accepted_by_both_apis(
    case: str, v1: RunningSandbox, cloud: RunningCloudSandbox
) -> None:
    name, body, extras = ACCEPTED[case]
    for settings, to in (
        (sandbox_settings(v1), "5511987650001"),
        (_cloud_settings(cloud), "5511987650001"),
    ):
        receipt = _send(settings, name, body, extras, to)
        assert not isinstance(receipt, Exception), (settings.api, receipt)
        assert receipt.message_id


@pytest.mark.parametrize("case", list(REFUSED))
def test_each_component_that_does_not_fit_is_refused_with_its_apis_code(
    case: str, v1: RunningSandbox, cloud: RunningCloudSandbox
) -> None:
    name, body, extras, v1_code, cloud_code, error = REFUSED[case]
    refused = _send(sandbox_settings(v1), name, body, extras, "5511987650002")
    assert isinstance(refused, error) and refused.code == v1_code, refused
    refused = _send(_cloud_settings(cloud), name, body, extras, "5511987650002")
    assert isinstance(refused, error) and refused.code == cloud_code, refused


def test_a_send_without_extras_still_fits_a_template_without_header_or_buttons(
    v1: RunningSandbox, cloud: RunningCloudSandbox
) -> None:
    for settings in (sandbox_settings(v1), _cloud_settings(cloud)):
        receipt = _send(settings, "welcome", [], NO_EXTRAS, "5511987650003")
        assert not isinstance(receipt, Exception), receipt
