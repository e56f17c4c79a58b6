"""The funnel derived from outcome counts."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.errors import StopRunError
from tasks.frame import with_stage_columns
from tasks.record import recipient_rows
from tasks.summary import (
    Counts,
    RunFacts,
    build_report,
    failure_examples,
    format_funnel,
    funnel,
    top_failures,
)


def test_funnel_splits_sent_now_from_already_sent_and_counts_everyone() -> None:
    frame = with_stage_columns(pd.DataFrame({"customer_id": ["1", "2", "3", "4"]}))
    frame["outcome"] = ["sent", "sent", "send_failed", "excluded_duplicate"]
    frame["reason"] = [None, "already_sent", "missing_parameter", "duplicate"]
    lines = funnel(Counts.of([frame]))
    assert lines["customers read"] == 4
    assert lines["sent in this run"] == 1
    assert lines["sent by an earlier run"] == 1
    assert lines["failed: missing template parameter"] == 1
    assert lines["failed: API refused"] == 0
    assert "customers read" in format_funnel(lines)


def test_record_refuses_a_customer_without_outcome() -> None:
    frame = with_stage_columns(pd.DataFrame({"customer_id": ["1"]}))
    with pytest.raises(StopRunError, match="without an outcome"):
        recipient_rows(frame, campaign_id="c", run_id="r", now=pd.Timestamp.now(tz="UTC"))


def test_the_report_counts_outcomes_and_pairs_without_joining_them_into_strings() -> None:
    frame = with_stage_columns(pd.DataFrame({"customer_id": ["1", "2", "3"]}))
    frame["outcome"] = ["send_failed", "send_failed", "unknown"]
    frame["reason"] = ["1013", "1013", "send_in_doubt"]
    counts = Counts.of([frame])
    assert counts.outcome("send_failed", "1013") == 2 and counts.customers == 3
    assert top_failures(counts)[0] == ("send_failed: 1013", 2)
    facts = RunFacts("r", 1, "c", "ns/t/en", False, 50.0, "sqlite://", send_seconds=2.0)
    report = build_report(facts, counts, failure_examples([frame]), {})
    assert report["counts"] == {"send_failed": 2, "unknown": 1}
    assert report["run_counts"]["customers"] == 3 and report["messages_sent"] == 0
