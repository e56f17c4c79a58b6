"""Frame logic of verify and send, without any I/O."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from connectors.vocabulary import MESSAGE_ID, OUTCOME, REASON, WA_ID, LedgerState
from connectors.warehouse import ledger
from tasks.frame import with_stage_columns
from tasks.send import Past, _Pending, apply_results, frozen_heap, outgoing
from tasks.verify import apply_checks, numbers_to_check

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _frame(phones: list[str]) -> pd.DataFrame:
    frame = with_stage_columns(pd.DataFrame({"customer_id": [str(i) for i in range(len(phones))]}))
    frame["phone_e164"] = pd.Series(phones, dtype="str")
    frame["param_first_name"] = pd.Series([" Asha "] * len(phones), dtype="str")
    return frame


def test_numbers_to_check_are_distinct_and_only_those_still_in_the_running() -> None:
    frame = _frame(["+1", "+2", "+1", "+3"])
    frame.loc[3, OUTCOME] = "excluded_duplicate"
    assert numbers_to_check([frame, _frame(["+2", "+4"])]) == ["+1", "+2", "+4"]


def test_checks_set_wa_id_or_the_reason_for_each_status() -> None:
    answers = {
        "+1": ("valid", "1"),
        "+2": ("invalid", None),
        "+3": ("failed", None),
        "+4": ("processing", None),
    }
    out = apply_checks(_frame(["+1", "+2", "+3", "+4", "+5"]), answers)
    assert out[WA_ID].iloc[0] == "1" and pd.isna(out[OUTCOME].iloc[0])
    assert out[OUTCOME].tolist()[1:] == [
        "excluded_not_on_whatsapp",
        "check_failed",
        "check_failed",
        "check_failed",  # no answer at all is a failed check, never "not on WhatsApp"
    ]
    assert out[REASON].tolist()[1:] == [
        "not_on_whatsapp",
        "check_failed",
        "check_processing",
        "check_failed",
    ]


def test_outgoing_carries_trimmed_parameters_and_ledger_history() -> None:
    frame = _frame(["+1", "+2"])
    frame[WA_ID] = pd.Series(["1", None], dtype="str")
    history = pd.DataFrame(
        {
            "phone_e164": ["+1"],
            "state": ["send_failed"],
            "attempts": [2],
            "first_attempt_at": [pd.Timestamp(NOW)],
        }
    )
    [item] = outgoing(frame, ["param_first_name"], Past.of(history))
    assert (item.phone_e164, item.wa_id, item.params, item.attempts) == ("+1", "1", ("Asha",), 2)
    assert item.first_attempt_at == NOW
    assert item.ledger_state == "send_failed"  # the claim is made from this state only


def test_results_become_outcomes_with_codes_and_message_ids() -> None:
    frame = _frame(["+1", "+2", "+3"])
    results = {
        "+1": ledger.Result("+1", LedgerState.SENT, NOW, message_id="gBEG1"),
        "+2": ledger.Result("+2", LedgerState.SEND_FAILED, NOW, error_code="1013"),
        "+3": ledger.Result("+3", LedgerState.UNKNOWN, NOW),
    }
    out = apply_results(frame, results)
    assert out[OUTCOME].tolist() == ["sent", "send_failed", "unknown"]
    assert out[REASON].tolist()[1:] == ["1013", "send_in_doubt"]
    assert out[MESSAGE_ID].iloc[0] == "gBEG1"


def test_a_wa_id_that_replied_stop_is_excluded_after_the_check() -> None:
    from tasks.verify import exclude_stopped

    out = exclude_stopped(
        apply_checks(_frame(["+1", "+2"]), {"+1": ("valid", "551"), "+2": ("valid", "2")}), {"551"}
    )
    assert out[REASON].iloc[0] == "opted_out_via_whatsapp" and pd.isna(out[REASON].iloc[1])
    assert pd.isna(out[WA_ID].iloc[0]) and out[WA_ID].iloc[1] == "2"


def test_the_heap_is_frozen_while_sending_and_released_after_even_on_error() -> None:
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("send failed")
    assert gc.get_freeze_count() == 0


def test_pending_sends_are_read_only_as_slots_free_up() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            pulled.append(i)
            yield i

    pending = _Pending(items())  # type: ignore[arg-type]
    assert pulled == [0] and pending
    assert pending.take(0) == [] and pending.take(2) == [0, 1] and pulled == [0, 1, 2]
    assert pending.take(9) == [2, 3, 4] and not pending and pending.take(1) == []
