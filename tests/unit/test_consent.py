"""Consent rules: opt-in with no later opt-out, maximum age, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.vocabulary import OUTCOME, REASON
from tasks.consent import apply_consent
from tasks.frame import with_stage_columns

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _frame(rows: list[tuple[datetime | None, datetime | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(len(rows))],
            "opt_in_at": pd.to_datetime([r[0] for r in rows], utc=True),
            "opt_out_at": pd.to_datetime([r[1] for r in rows], utc=True),
        }
    )
    return with_stage_columns(frame)


def test_opt_in_without_opt_out_stays_in() -> None:
    out = apply_consent(_frame([(T0, None)]))
    assert out[OUTCOME].isna().all()


def test_opt_out_at_or_after_opt_in_excludes_as_opted_out() -> None:
    out = apply_consent(_frame([(T0, T0), (T0, T0 + timedelta(days=1))]))
    assert out[OUTCOME].tolist() == ["excluded_no_consent"] * 2
    assert out[REASON].tolist() == ["opted_out"] * 2


def test_opt_out_before_a_later_opt_in_means_reconsented() -> None:
    out = apply_consent(_frame([(T0, T0 - timedelta(days=3))]))
    assert out[OUTCOME].isna().all()


def test_missing_opt_in_is_no_opt_in_and_lone_opt_out_is_opted_out() -> None:
    out = apply_consent(_frame([(None, None), (None, T0)]))
    assert out[REASON].tolist() == ["no_opt_in", "opted_out"]


def test_consent_older_than_max_age_is_excluded() -> None:
    now = T0 + timedelta(days=400)
    out = apply_consent(
        _frame([(T0, None), (now - timedelta(days=10), None)]),
        max_age=timedelta(days=365),
        now=now,
    )
    assert out[REASON].tolist()[0] == "consent_expired"
    assert pd.isna(out[OUTCOME].tolist()[1])


def test_rows_already_excluded_keep_their_outcome() -> None:
    frame = _frame([(None, None)])
    frame.loc[0, OUTCOME] = "excluded_invalid_number"
    frame.loc[0, REASON] = "too_short"
    out = apply_consent(frame)
    assert out.loc[0, REASON] == "too_short"


def test_opt_out_flag_excludes_whatever_the_timestamps_say() -> None:
    frame = _frame([(T0, None), (T0, None)])
    frame["opt_out"] = [True, False]
    out = apply_consent(frame)
    assert out[REASON].tolist()[0] == "opted_out"
    assert pd.isna(out[OUTCOME].tolist()[1])


def test_opt_in_flag_counts_as_consent_but_cannot_prove_its_age() -> None:
    frame = _frame([(None, None), (None, None)])
    frame["opt_in"] = [True, False]
    out = apply_consent(frame)
    assert pd.isna(out[OUTCOME].iloc[0]) and out[REASON].iloc[1] == "no_opt_in"
    aged = apply_consent(frame, max_age=timedelta(days=30), now=T0)
    assert aged[REASON].tolist() == ["consent_expired", "no_opt_in"]


def test_numbers_that_replied_stop_are_excluded_whatever_the_crm_says() -> None:
    from tasks.consent import apply_opt_outs

    frame = _frame([(T0, None), (T0, None)])
    frame["phone_e164"] = pd.Series(["+4915112345678", "+4915112345679"], dtype="str")
    out = apply_opt_outs(frame, {"+4915112345678"})
    assert (out[OUTCOME].iloc[0], out[REASON].iloc[0]) == (
        "excluded_no_consent",
        "opted_out_via_whatsapp",
    )
    assert pd.isna(out[OUTCOME].iloc[1])


def test_an_opt_in_after_now_is_no_consent_yet() -> None:
    out = apply_consent(
        _frame([(T0 + timedelta(seconds=1), None), (T0, None), (T0 + timedelta(days=1), T0)]),
        now=T0,
    )
    assert out[OUTCOME].fillna("").tolist() == ["excluded_no_consent", "", "excluded_no_consent"]
    assert out[REASON].tolist()[::2] == ["opt_in_in_future"] * 2


def test_an_opt_out_after_a_future_opt_in_is_still_an_opt_out() -> None:
    future = datetime(9999, 12, 31, tzinfo=UTC)
    out = apply_consent(_frame([(future, future), (T0, future)]), now=T0)
    assert out[REASON].tolist() == ["opted_out", "opted_out"]


def test_a_naive_now_is_taken_as_utc() -> None:
    out = apply_consent(_frame([(T0 + timedelta(hours=1), None)]), now=datetime(2026, 1, 1, 2))
    assert out[OUTCOME].isna().all()
    expired = apply_consent(
        _frame([(T0, None)]), max_age=timedelta(hours=1), now=datetime(2026, 1, 1, 2)
    )
    assert expired[REASON].tolist() == ["consent_expired"]
