"""Planning: missing template parameters, what the ledger settled, dry run."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from connectors.vocabulary import MESSAGE_ID, OUTCOME, REASON
from tasks.plan import apply_ledger, mark_planned, require_params

ChunkOf = Callable[..., pd.DataFrame]  # the `chunk_of` fixture (tests/conftest.py)


def _ledger(rows: list[tuple[str, str, bool, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["phone_e164", "state", "retryable", "message_id", "error_code"]
    )


def test_missing_or_blank_parameter_fails_before_any_call(
    chunk_of: ChunkOf,
) -> None:
    out = require_params(chunk_of(["+1", "+2", "+3"], ["Asha", None, "  "]), ["param_first_name"])
    assert out[OUTCOME].tolist()[1:] == ["send_failed", "send_failed"]
    assert out[REASON].tolist()[1:] == ["missing_parameter", "missing_parameter"]
    assert pd.isna(out[OUTCOME].iloc[0])


def test_ledger_settles_sent_and_permanent_failures_and_retries_transient(
    chunk_of: ChunkOf,
) -> None:
    ledger = _ledger(
        [
            ("+1", "sent", False, "gBEGa", None),
            ("+2", "send_failed", False, None, "1013"),
            ("+3", "send_failed", True, None, "1016"),
        ]
    )
    out = apply_ledger(chunk_of(["+1", "+2", "+3", "+4"]), ledger, resend_unknown=False)
    assert out[OUTCOME].tolist()[:2] == ["sent", "send_failed"]
    assert out[REASON].tolist()[:2] == ["already_sent", "1013"]
    assert out[MESSAGE_ID].iloc[0] == "gBEGa"
    assert out[OUTCOME].iloc[2:].isna().all()


def test_sends_in_doubt_are_reported_unless_resend_unknown(
    chunk_of: ChunkOf,
) -> None:
    ledger = _ledger([("+1", "unknown", False, None, None)])
    held = apply_ledger(chunk_of(["+1"]), ledger, resend_unknown=False)
    assert (held[OUTCOME].iloc[0], held[REASON].iloc[0]) == ("unknown", "send_in_doubt")
    resent = apply_ledger(chunk_of(["+1"]), ledger, resend_unknown=True)
    assert pd.isna(resent[OUTCOME].iloc[0])


def test_dry_run_marks_everyone_still_in_the_running_planned(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+1", "+2"])
    frame.loc[1, OUTCOME] = "excluded_duplicate"
    assert mark_planned(frame)[OUTCOME].tolist() == ["planned", "excluded_duplicate"]


def test_parameter_text_is_cleaned_the_way_the_api_accepts_it(
    chunk_of: ChunkOf,
) -> None:
    names = ["Ada\nLovelace", "Ada\t\tL", "Ada      L", "Ada    L", " \u0000Ada\r\n  L "]
    out = require_params(chunk_of(["+1"] * len(names), names), ["param_first_name"])
    assert out["param_first_name"].tolist() == [
        "Ada Lovelace",
        "Ada L",
        "Ada L",
        "Ada    L",
        "Ada L",
    ]
    assert out[OUTCOME].isna().all()


def test_parameter_over_1024_characters_or_empty_after_cleaning_fails_that_customer_only(
    chunk_of: ChunkOf,
) -> None:
    names = ["x" * 1024, "x" * 1025, "\n\t  \n", "Asha"]
    out = require_params(chunk_of(["+1", "+2", "+3", "+4"], names), ["param_first_name"])
    assert pd.isna(out[OUTCOME].iloc[0]) and pd.isna(out[OUTCOME].iloc[3])
    assert out[REASON].tolist()[1:3] == ["invalid_parameter", "missing_parameter"]
    assert out[OUTCOME].tolist()[1:3] == ["send_failed", "send_failed"]
