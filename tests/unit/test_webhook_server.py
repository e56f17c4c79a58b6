"""The receiver's uvicorn settings pick the fast HTTP parser and event loop."""

from __future__ import annotations

import uvloop
from pydantic import SecretStr
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connectors.webhooks.app import ReceiverApp
from connectors.webhooks.server import uvicorn_config
from connectors.webhooks.settings import ReceiverSettings


def test_the_receiver_is_served_with_httptools_and_uvloop_as_asgi3() -> None:
    app = ReceiverApp(ReceiverSettings(warehouse_url=SecretStr("sqlite://")))
    config = uvicorn_config(app, host="127.0.0.1", port=0)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    assert config.get_loop_factory() is uvloop.new_event_loop
    assert config.interface == "asgi3"
