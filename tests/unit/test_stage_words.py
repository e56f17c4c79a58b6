"""Each stage's log line says what the stage did, in its own words."""

from __future__ import annotations

import pandas as pd

from connectors.vocabulary import OUTCOME, REASON
from tasks.frame import Tally
from tasks.send.task import SenderDone, describe_send
from tasks.stage_words import stage_line


def _tally(rows: int, **settled: int) -> Tally:
    """`rows` customers, `outcome=n` or `outcome__reason=n` of them settled."""
    outcomes = {}
    for key, n in settled.items():
        outcome, _, reason = key.partition("__")
        outcomes[(outcome, reason or None)] = n
    return Tally(rows, sum(settled.values()), outcomes)


EXTRACTED = _tally(3000)
CONSENTED = _tally(3000, excluded_no_consent=300, excluded_invalid_number=180)
SHAPED = _tally(
    3000,
    excluded_no_consent=300,
    excluded_invalid_number=180,
    excluded_duplicate=300,
    send_failed__missing_parameter=25,
)
VERIFIED = _tally(
    3000,
    excluded_no_consent=300,
    excluded_invalid_number=180,
    excluded_duplicate=300,
    send_failed__missing_parameter=25,
    excluded_not_on_whatsapp__not_on_whatsapp=206,
)


def test_tally_counts_each_outcome_with_its_reason() -> None:
    frame = pd.DataFrame(
        {
            OUTCOME: pd.Series(["excluded_no_consent", None, "send_failed"], dtype="str"),
            REASON: pd.Series([None, None, "missing_parameter"], dtype="str"),
        }
    )
    tally = Tally.of(frame)
    assert tally == Tally(
        3, 2, {("excluded_no_consent", None): 1, ("send_failed", "missing_parameter"): 1}
    )
    assert (tally + tally).outcomes[("send_failed", "missing_parameter")] == 2


def test_each_stage_says_what_it_did() -> None:
    lines = [
        stage_line("extract", Tally(), EXTRACTED, 0.21),
        stage_line("consent + normalise", EXTRACTED, CONSENTED, 0.1),
        stage_line("opt-outs + dedupe + plan + rules", CONSENTED, SHAPED, 0.05),
        stage_line("verify", SHAPED, VERIFIED, 0.07),
    ]
    assert lines == [
        "extract: 3,000 customers, none set aside (0.21 s)",
        "consent + normalise: 3,000 customers, 2,520 kept, 480 excluded (no consent 300, "
        "invalid number 180) (0.10 s)",
        "opt-outs + dedupe + plan + rules: 3,000 customers, 2,195 kept, 325 set aside "
        "(duplicate number 300, failed (missing_parameter) 25) (0.05 s)",
        "verify: 3,000 customers, 1,989 on WhatsApp, 206 not (0.07 s)",
    ]


def test_extract_names_what_it_set_aside_and_verify_what_the_limit_deferred() -> None:
    read = _tally(10, excluded_invalid_customer_id__missing_customer_id=2)
    assert stage_line("extract", Tally(), read, 1) == (
        "extract: 10 customers, 2 set aside (no customer id 2) (1.00 s)"
    )
    limited = _tally(10, excluded_duplicate=1, deferred__messaging_limit=3)
    assert stage_line("verify", _tally(10, excluded_duplicate=1), limited, 1) == (
        "verify: 10 customers, 6 on WhatsApp, 0 not, deferred (messaging_limit) 3 (1.00 s)"
    )


def test_a_dry_run_plans_and_the_record_stage_writes() -> None:
    planned = _tally(3000, excluded_duplicate=300, planned=2700)
    assert stage_line("planned", _tally(3000, excluded_duplicate=300), planned, 0.5) == (
        "planned: 3,000 customers, 2,700 planned (0.50 s)"
    )
    sent = _tally(3000, excluded_duplicate=300, sent=2690, send_failed__131026=10)
    assert stage_line("record", _tally(3000, excluded_duplicate=300), sent, 0.5) == (
        "record: 3,000 customers, 3,000 written, sent 2,690, failed (131026) 10 (0.50 s)"
    )


def test_every_line_keeps_the_shape_the_benchmarks_read() -> None:
    for stage in ("extract", "verify", "reachability", "planned", "record", "consent"):
        line = stage_line(stage, CONSENTED, VERIFIED, 1.5)
        assert line.startswith(f"{stage}: 3,000 customers, ") and line.endswith(" (1.50 s)")


def test_the_send_stage_says_sent_failed_by_reason_and_rate() -> None:
    one = [SenderDone("onprem:wa", 1964, None, {"131026": 20, "131049": 5})]
    assert describe_send(one, 10.0) == "1,964 sent, 25 failed (131026 20, 131049 5) at 198.9/s"
    two = [SenderDone("a", 100, None), SenderDone("b", 50, "its token expired", {}, 2)]
    assert describe_send(two, 2.0) == (
        "150 sent, 0 failed, 2 in doubt at 76.0/s (a sent 100; b sent 50, then stopped: "
        "its token expired)"
    )
