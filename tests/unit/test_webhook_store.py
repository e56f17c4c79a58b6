"""Which inbound messages the receiver hands the warehouse as opt-outs, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.warehouse.events import OptOut
from connectors.webhooks.keywords import DEFAULT_OPT_OUT_KEYWORDS, keyword_index
from connectors.webhooks.payloads import InboundMessage
from connectors.webhooks.store import opt_outs_in

INDEX = keyword_index(DEFAULT_OPT_OUT_KEYWORDS)
NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_only_keyword_texts_from_a_number_are_opt_outs() -> None:
    at = NOW - timedelta(minutes=5)
    inbound = [
        InboundMessage("a", "4915100000011", at, "text", "please stop"),
        InboundMessage("b", "4915100000012", at, "image", None),
        InboundMessage("c", "not-digits", at, "text", "STOP"),
        InboundMessage("d", "4915100000013", at, "text", " Unsubscribe. "),
        InboundMessage("e", "4915100000014", None, "text", "СТОП"),
    ]
    assert opt_outs_in(inbound, INDEX, NOW) == [
        OptOut("4915100000013", "UNSUBSCRIBE", "d", at),
        OptOut("4915100000014", "СТОП", "e", NOW),  # no timestamp: when it was received
    ]


def test_every_opt_out_of_a_number_is_handed_on_for_the_warehouse_to_keep_the_earliest() -> None:
    later, earlier = NOW, NOW - timedelta(minutes=1)
    inbound = [
        InboundMessage("d", "4915100000013", later, "text", "stop"),
        InboundMessage("e", "4915100000013", earlier, "text", "STOP!"),
    ]
    assert [o.message_id for o in opt_outs_in(inbound, INDEX, NOW)] == ["d", "e"]


def test_no_keywords_means_no_opt_outs() -> None:
    inbound = [InboundMessage("a", "4915100000011", NOW, "text", "STOP")]
    assert opt_outs_in(inbound, keyword_index([]), NOW) == []


def test_a_keyword_text_from_a_bsuid_alone_is_an_opt_out_for_the_warehouse_to_map() -> None:
    bsuid = "DE.13491208655302741918"
    inbound = [
        InboundMessage("a", None, NOW, "text", "STOP", user_id=bsuid),
        InboundMessage("b", "4915100000013", NOW, "text", "stop", user_id=bsuid),
        InboundMessage("c", None, NOW, "text", "hello", user_id=bsuid),
        InboundMessage("d", "not-digits", NOW, "text", "STOP", user_id=bsuid),
    ]
    assert opt_outs_in(inbound, INDEX, NOW) == [
        OptOut(None, "STOP", "a", NOW, user_id=bsuid),
        OptOut("4915100000013", "STOP", "b", NOW, user_id=bsuid),
        OptOut(None, "STOP", "d", NOW, user_id=bsuid),
    ]
