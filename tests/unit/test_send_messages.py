"""The messages a chunk owes, and its outcomes written back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

from connectors.vocabulary import MESSAGE_ID, OUTCOME, REASON, WA_ID, LedgerState
from connectors.warehouse import ledger
from connectors.whatsapp import Template
from tasks.send.messages import Past, apply_results, outgoing
from tasks.template import Fill

WELCOME = Template(None, "welcome", "en")

NOW = datetime(2026, 11, 24, tzinfo=UTC)

ChunkOf = Callable[..., pd.DataFrame]  # the `chunk_of` fixture (tests/conftest.py)


def test_outgoing_carries_trimmed_parameters_and_ledger_history(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+1", "+2"], [" Asha ", " Asha "])
    frame[WA_ID] = pd.Series(["1", None], dtype="str")
    history = pd.DataFrame(
        {
            "phone_e164": ["+1"],
            "state": ["send_failed"],
            "attempts": [2],
            "first_attempt_at": [pd.Timestamp(NOW)],
        }
    )
    [item] = outgoing(frame, Fill.plain(WELCOME, ["first_name"]), Past.of(history))
    assert (item.phone_e164, item.wa_id, item.params, item.attempts) == ("+1", "1", ("Asha",), 2)
    assert item.first_attempt_at == NOW
    assert item.ledger_state == "send_failed"  # the claim is made from this state only


def test_results_become_outcomes_with_codes_and_message_ids(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+1", "+2", "+3"])
    results = {
        "+1": ledger.Result("+1", LedgerState.SENT, NOW, message_id="gBEG1"),
        "+2": ledger.Result("+2", LedgerState.SEND_FAILED, NOW, error_code="1013"),
        "+3": ledger.Result("+3", LedgerState.UNKNOWN, NOW),
    }
    out = apply_results(frame, results)
    assert out[OUTCOME].tolist() == ["sent", "send_failed", "unknown"]
    assert out[REASON].tolist()[1:] == ["1013", "send_in_doubt"]
    assert out[MESSAGE_ID].iloc[0] == "gBEG1"


def test_a_held_or_paused_send_is_sent_with_that_status_as_its_reason(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+1", "+2", "+3"])
    results = {
        p: ledger.Result(p, LedgerState.SENT, NOW, message_id=f"wamid.{p}", message_status=s)
        for p, s in [("+1", "accepted"), ("+2", "held_for_quality_assessment"), ("+3", "paused")]
    }
    out = apply_results(frame, results)
    assert out[OUTCOME].tolist() == ["sent", "sent", "sent"]
    assert pd.isna(out[REASON].iloc[0])
    assert out[REASON].tolist()[1:] == ["held_for_quality_assessment", "paused"]
