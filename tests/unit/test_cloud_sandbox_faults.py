"""The Cloud sandbox's fault kinds: the v1 kinds plus `code:<n>`, any Cloud code on demand."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors.whatsapp.cloud.sandbox import CloudSandboxApp, CloudSandboxConfig, create_cloud_app
from connectors.whatsapp.cloud.sandbox.__main__ import _parser, config_from_args
from connectors.whatsapp.cloud.sandbox.errors import CATALOGUE
from connectors.whatsapp.cloud.sandbox.faults import FaultPlan, check_fault, fault_code

TOKEN = "sandbox-cloud-token"
PHONE = "106540352242922"
MESSAGES = f"/v23.0/{PHONE}/messages"
SEND = {
    "messaging_product": "whatsapp",
    "to": "4915112345671",
    "type": "template",
    "template": {"name": "welcome", "language": {"code": "en"}},
}


def post_sends(
    config: CloudSandboxConfig, count: int
) -> tuple[list[httpx.Response], CloudSandboxApp]:
    """`count` sends to an in-process sandbox app (no server); the answers and the app."""
    app = create_cloud_app(config)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app.asgi)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sandbox", headers=headers
        ) as http:
            return [await http.post(MESSAGES, json=SEND) for _ in range(count)]

    return asyncio.run(go()), app


@pytest.mark.parametrize("kind", ["500", "503", "reset", "hang", "garbage", "code:131042"])
def test_known_fault_kinds_are_accepted(kind: str) -> None:
    assert check_fault(kind) == kind


@pytest.mark.parametrize("kind", ["code:999", "code:", "code:x", "code:-4", "boom", "Code:4"])
def test_unknown_fault_kinds_are_refused_naming_the_choices(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown fault") as refused:
        check_fault(kind)
    assert "code:<n>" in str(refused.value)


def test_fault_code_reads_only_code_faults() -> None:
    assert [fault_code(k) for k in ("code:368", "code:1", "503", "garbage")] == [368, 1, None, None]


def test_a_script_mixes_code_faults_and_v1_kinds_in_order() -> None:
    plan = FaultPlan(("messages",), rates={}, script={"messages": ("code:4", "503")}, seed=0)
    plan.script("messages", ["code:131042"])
    assert [plan.next("messages") for _ in range(4)] == ["code:4", "503", "code:131042", None]


def test_config_refuses_a_code_the_sandbox_does_not_know() -> None:
    with pytest.raises(ValueError, match="code:7"):
        CloudSandboxConfig(fault_script={"messages": ("code:7",)})


@pytest.mark.parametrize("code", sorted(CATALOGUE), ids=str)
def test_a_code_fault_answers_that_code_with_its_catalogue_status(code: int) -> None:
    config = CloudSandboxConfig(fault_script={"messages": (f"code:{code}",)})
    (answer, after), app = post_sends(config, 2)
    assert answer.status_code == CATALOGUE[code].status
    error = answer.json()["error"]
    assert (error["code"], error["type"]) == (code, CATALOGUE[code].type)
    assert CATALOGUE[code].title in error["message"] or code == 190
    assert after.status_code == 200, "the fault is used up: normal service follows"
    assert [r.fault for r in app.state.requests] == [f"code:{code}", None]
    assert app.state.stats()[f"faults.code:{code}"] == 1


def test_a_code_130429_fault_takes_the_throttle_status_and_retry_after() -> None:
    config = CloudSandboxConfig(
        fault_script={"messages": ("code:130429",)}, throttle_status=400, throttle_retry_after_s=2
    )
    (answer, _), _ = post_sends(config, 2)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, 130429)
    assert answer.headers["retry-after"] == "2"


@pytest.mark.parametrize(("retry_after", "header"), [(None, None), (0, "0"), (3, "3")])
def test_throughput_answers_carry_retry_after_only_when_configured(
    retry_after: int | None, header: str | None
) -> None:
    config = CloudSandboxConfig(
        throughput_per_s=0.1, throughput_burst=1, throttle_retry_after_s=retry_after
    )
    (first, second), _ = post_sends(config, 2)
    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]["code"]) == (429, 130429)
    assert second.headers.get("retry-after") == header


def test_negative_retry_after_is_refused() -> None:
    with pytest.raises(ValueError, match="throttle_retry_after_s"):
        CloudSandboxConfig(throttle_retry_after_s=-1)


def test_the_command_line_takes_code_faults_and_a_retry_after() -> None:
    faults = ["--fault", "messages:code:131042:0.25", "--fault", "templates:503:0.5"]
    args = _parser().parse_args([*faults, "--throttle-retry-after-s", "2"])
    config = config_from_args(args)
    assert config.fault_rates == {"messages": {"code:131042": 0.25}, "templates": {"503": 0.5}}
    assert config.throttle_retry_after_s == 2
    with pytest.raises(ValueError, match="unknown fault"):
        config_from_args(_parser().parse_args(["--fault", "messages:code:7:0.1"]))


def test_code_faults_are_scripted_over_the_admin_route_too() -> None:
    app = create_cloud_app(CloudSandboxConfig())

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            refused = await http.post("/sandbox/faults", json={"script": {"messages": ["code:7"]}})
            await http.post("/sandbox/faults", json={"script": {"messages": ["code:368"]}})
            auth = {"Authorization": f"Bearer {TOKEN}"}
            return refused, await http.post(MESSAGES, json=SEND, headers=auth)

    refused, answer = asyncio.run(go())
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, 100)
    assert "code:7" in refused.json()["error"]["error_data"]["details"]
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, 368)
