"""Verify on frames: which numbers are checked, and what each answer does to its customer."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from connectors.vocabulary import OUTCOME, REASON, WA_ID
from tasks.verify.common import exclude_stopped, numbers_to_check
from tasks.verify.contacts import apply_checks
from tasks.verify.reachability import apply_reachability

ChunkOf = Callable[..., pd.DataFrame]  # the `chunk_of` fixture (tests/conftest.py)


def test_numbers_to_check_are_distinct_and_only_those_still_in_the_running(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+1", "+2", "+1", "+3"])
    frame.loc[3, OUTCOME] = "excluded_duplicate"
    assert numbers_to_check([frame, chunk_of(["+2", "+4"])]) == ["+1", "+2", "+4"]


def test_checks_set_wa_id_or_the_reason_for_each_status(
    chunk_of: ChunkOf,
) -> None:
    answers = {
        "+1": ("valid", "1"),
        "+2": ("invalid", None),
        "+3": ("failed", None),
        "+4": ("processing", None),
    }
    out = apply_checks(chunk_of(["+1", "+2", "+3", "+4", "+5"]), answers)
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


def test_a_wa_id_that_replied_stop_is_excluded_after_the_check(
    chunk_of: ChunkOf,
) -> None:

    out = exclude_stopped(
        apply_checks(chunk_of(["+1", "+2"]), {"+1": ("valid", "551"), "+2": ("valid", "2")}),
        {"551"},
    )
    assert out[REASON].iloc[0] == "opted_out_via_whatsapp" and pd.isna(out[REASON].iloc[1])
    assert pd.isna(out[WA_ID].iloc[0]) and out[WA_ID].iloc[1] == "2"


def test_reachability_suppresses_recently_undeliverable_numbers_and_addresses_the_rest(
    chunk_of: ChunkOf,
) -> None:
    frame = chunk_of(["+4915112345670", "+4915112345671", "+4915112345672"])
    frame.loc[2, OUTCOME] = "excluded_duplicate"
    out = apply_reachability(frame, {"+4915112345670"})
    assert (out[OUTCOME].iloc[0], out[REASON].iloc[0]) == (
        "excluded_not_on_whatsapp",
        "undeliverable",
    )
    assert out[WA_ID].iloc[1] == "4915112345671" and pd.isna(out[OUTCOME].iloc[1])
    assert pd.isna(out[WA_ID].iloc[2])  # excluded earlier: left alone
