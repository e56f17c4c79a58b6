"""The funnel derived from outcome counts."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.errors import StopRunError
from tasks.frame import with_stage_columns
from tasks.record import outcome_counts, recipient_rows
from tasks.summary import format_funnel, funnel


def test_funnel_splits_sent_now_from_already_sent_and_counts_everyone() -> None:
    frame = with_stage_columns(pd.DataFrame({"customer_id": ["1", "2", "3", "4"]}))
    frame["outcome"] = ["sent", "sent", "send_failed", "excluded_duplicate"]
    frame["reason"] = [None, "already_sent", "missing_parameter", "duplicate"]
    lines = funnel(outcome_counts([frame]))
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
