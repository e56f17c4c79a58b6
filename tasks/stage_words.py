"""Each stage's log line in its own words, from the counts before and after it (never a number).

  extract: 3,000 customers, none set aside (0.21 s)
  consent + normalise: 3,000 customers, 2,520 kept, 480 excluded (no consent 300, invalid
      number 180) (0.10 s)
  verify: 3,000 customers, 1,989 on WhatsApp, 206 not (0.07 s)

Every line starts `<stage>: <n> customers` and ends `(<seconds> s)` (bench/cluster.py reads them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from connectors.vocabulary import Outcome, Reason
from tasks.frame import Pair, Tally

_LABELS: Final[Mapping[str, str]] = {
    Outcome.EXCLUDED_INVALID_CUSTOMER_ID: "no customer id",
    Outcome.EXCLUDED_NO_CONSENT: "no consent",
    Outcome.EXCLUDED_INVALID_NUMBER: "invalid number",
    Outcome.EXCLUDED_DUPLICATE: "duplicate number",
    Outcome.EXCLUDED_NOT_ON_WHATSAPP: "not on WhatsApp",
    Outcome.EXCLUDED_POLICY: "marketing paused",
    Outcome.CHECK_FAILED: "check failed",
    Outcome.PLANNED: "planned",
    Outcome.SENT: "sent",
}
# Outcomes whose reason says more than the outcome: shown as `failed (missing_parameter)`.
_WITH_REASON: Final[Mapping[str, str]] = {
    Outcome.DEFERRED: "deferred",
    Outcome.SEND_FAILED: "failed",
    Outcome.UNKNOWN: "in doubt",
}
_SPECIAL: Final[Mapping[Pair, str]] = {
    (Outcome.EXCLUDED_NO_CONSENT, Reason.STOPPED_MARKETING): "stopped marketing",
    (Outcome.EXCLUDED_NOT_ON_WHATSAPP, Reason.UNDELIVERABLE): "undeliverable",
    (Outcome.SENT, Reason.ALREADY_SENT): "sent by an earlier run",
    (Outcome.EXCLUDED_POLICY, Reason.NO_TEMPLATE_LANGUAGE): "no template in their language",
}


def label(pair: Pair) -> str:
    """A few words for an (outcome, reason) pair."""
    outcome, reason = pair
    if pair in _SPECIAL:
        return _SPECIAL[pair]
    if outcome in _WITH_REASON:
        return f"{_WITH_REASON[outcome]} ({reason})" if reason else _WITH_REASON[outcome]
    return _LABELS.get(outcome, outcome)


def added(before: Tally, after: Tally) -> dict[Pair, int]:
    """The customers the stage settled, per (outcome, reason), most first."""
    diff = {p: n - before.outcomes.get(p, 0) for p, n in after.outcomes.items()}
    return dict(sorted(((p, n) for p, n in diff.items() if n > 0), key=lambda kv: -kv[1]))


def listed(counts: Mapping[Pair, int]) -> str:
    """`no consent 300, invalid number 180`: each pair's words and count."""
    merged: dict[str, int] = {}
    for pair, n in counts.items():
        merged[label(pair)] = merged.get(label(pair), 0) + n
    return ", ".join(f"{words} {n:,}" for words, n in merged.items())


def stage_line(stage: str, before: Tally, after: Tally, seconds: float) -> str:
    """The stage's line: what it did, in its words, and how long it took."""
    new = added(before, after)
    running = after.rows - after.settled
    if stage == "extract":
        aside = f"{sum(new.values()):,} set aside ({listed(new)})" if new else "none set aside"
        return f"extract: {after.rows:,} customers, {aside} ({seconds:.2f} s)"
    if stage in ("verify", "reachability"):
        gone = (Outcome.EXCLUDED_NOT_ON_WHATSAPP, Reason.NOT_ON_WHATSAPP)
        words = [f"{running:,} on WhatsApp", f"{new.pop(gone, 0):,} not"]
        if stage == "reachability":
            words = [f"{running:,} to send"]
    elif stage == "planned":
        words = [f"{new.pop((Outcome.PLANNED, None), 0):,} planned"]
    elif stage == "record":
        words = [f"{after.rows:,} written"]
    else:
        out = sum(new.values())
        verb = "excluded" if all(o.startswith("excluded_") for o, _ in new) else "set aside"
        words = [f"{running:,} kept", f"{out:,} {verb}" + (f" ({listed(new)})" if new else "")]
        new = {}
    if new:
        words.append(listed(new))
    return f"{stage}: {after.rows:,} customers, {', '.join(words)} ({seconds:.2f} s)"
