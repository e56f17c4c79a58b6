"""The run's artifacts: the funnel table with separators and shares, the summary's words."""

from __future__ import annotations

import pandas as pd

from tasks.frame import with_stage_columns
from tasks.report import funnel_rows, summary_markdown
from tasks.summary import Counts, RunFacts, RunReport, build_report, top_exclusions


def _report(outcomes: list[tuple[str, str | None]], *, dry_run: bool = False) -> RunReport:
    frame = with_stage_columns(
        pd.DataFrame({"customer_id": [str(i) for i in range(len(outcomes))]})
    )
    frame["outcome"] = [o for o, _ in outcomes]
    frame["reason"] = [r for _, r in outcomes]
    facts = RunFacts("run-1", 1, "spring", "ns/t/en", dry_run, 50.0, "sqlite://", send_seconds=2.0)
    return build_report(facts, Counts.of([frame]), [], {"delivered": 1, "read": 1})


MIXED = [
    *[("sent", None)] * 1200,
    *[("excluded_no_consent", "no_opt_in")] * 300,
    *[("excluded_duplicate", "duplicate")] * 30,
    ("deferred", "messaging_limit"),
    *[("send_failed", "1013")] * 2,
]


def test_funnel_table_shows_separators_and_each_stage_share_of_customers_read() -> None:
    rows = {r["stage"]: r for r in funnel_rows(_report(MIXED)["funnel"])}
    assert rows["customers read"] == {
        "stage": "customers read",
        "customers": "1,533",
        "share of customers read": "100.0%",
    }
    assert rows["sent in this run"]["customers"] == "1,200"
    assert rows["sent in this run"]["share of customers read"] == "78.3%"
    assert rows["excluded: no consent"]["share of customers read"] == "19.6%"


def test_funnel_table_of_an_empty_run_has_no_share() -> None:
    rows = funnel_rows({"customers read": 0, "sent in this run": 0})
    assert {r["share of customers read"] for r in rows} == {"-"}


def test_summary_names_the_top_exclusion_and_failure_reasons() -> None:
    report = _report(MIXED)
    assert top_exclusions(Counts.of([])) == []
    assert report["top_exclusions"][:2] == [
        ("excluded_no_consent: no_opt_in", 300),
        ("excluded_duplicate: duplicate", 30),
    ]
    text = summary_markdown(report)
    assert "- dry run: no" in text
    assert (
        "## Top exclusion reasons" in text and "| `excluded_no_consent: no_opt_in` | 300 |" in text
    )
    assert "| `deferred: messaging_limit` | 1 |" in text
    assert "## Top failure reasons" in text and "| `send_failed: 1013` | 2 |" in text
    assert "Nothing new sent" not in text


def test_summary_of_a_rerun_says_nothing_new_was_sent() -> None:
    text = summary_markdown(_report([("sent", "already_sent")] * 1989))
    assert "**Nothing new sent**: 1,989 customers were already messaged by earlier runs." in text


def test_summary_of_a_dry_run_says_so_and_not_that_nothing_was_sent() -> None:
    text = summary_markdown(_report([("planned", None)] * 3, dry_run=True))
    assert "- dry run: **yes**, nothing checked, nothing sent" in text
    assert "Nothing new sent" not in text
