"""Each outgoing message carries its number's market, which its ledger claim records."""

from __future__ import annotations

from connectors.whatsapp import Template
from tasks.send.messages import Past, outgoing
from tasks.template import Fill
from tests.helpers import make_chunk

WELCOME = Template(None, "welcome", "en")


def test_each_outgoing_message_carries_the_market_of_its_number() -> None:
    frame = make_chunk(["+5511987654321", "+14155550100", "+80012345678"])
    frame["wa_id"] = ["5511987654321", "14155550100", "80012345678"]
    markets = {
        o.phone_e164: o.market
        for o in outgoing(frame, Fill.plain(WELCOME), Past.of(frame.iloc[0:0]))
    }
    assert markets == {"+5511987654321": "BR", "+14155550100": "US", "+80012345678": None}
