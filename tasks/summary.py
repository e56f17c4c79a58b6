"""The funnel: how many customers each stage let through, named for people and for machines."""

from __future__ import annotations

from typing import Final

from tasks.frame import Outcome, Reason

# (label, key in the counts of tasks.record.outcome_counts)
FUNNEL_LINES: Final = (
    ("excluded: no consent", Outcome.EXCLUDED_NO_CONSENT),
    ("excluded: invalid number", Outcome.EXCLUDED_INVALID_NUMBER),
    ("excluded: duplicate number", Outcome.EXCLUDED_DUPLICATE),
    ("excluded: not on WhatsApp", Outcome.EXCLUDED_NOT_ON_WHATSAPP),
    ("contact check failed", Outcome.CHECK_FAILED),
    ("planned (dry run)", Outcome.PLANNED),
    ("sent in this run", "sent_now"),
    ("sent by an earlier run", f"{Outcome.SENT}:{Reason.ALREADY_SENT}"),
    ("failed: missing template parameter", f"{Outcome.SEND_FAILED}:{Reason.MISSING_PARAMETER}"),
    ("failed: API refused", "send_failed_api"),
    ("unknown (in doubt after a crash)", Outcome.UNKNOWN),
)


def funnel(counts: dict[str, int]) -> dict[str, int]:
    """Ordered funnel lines from per-outcome and per-`outcome:reason` counts."""
    derived = dict(counts)
    derived["sent_now"] = counts.get(Outcome.SENT, 0) - counts.get(
        f"{Outcome.SENT}:{Reason.ALREADY_SENT}", 0
    )
    derived["send_failed_api"] = counts.get(Outcome.SEND_FAILED, 0) - counts.get(
        f"{Outcome.SEND_FAILED}:{Reason.MISSING_PARAMETER}", 0
    )
    total = sum(v for k, v in counts.items() if ":" not in k)
    lines = {"customers read": total}
    lines.update({label: derived.get(key, 0) for label, key in FUNNEL_LINES})
    return lines


def format_funnel(lines: dict[str, int]) -> str:
    """The funnel as an aligned text table."""
    width = max(len(label) for label in lines)
    return "\n".join(f"  {label:<{width}}  {count:>9,}" for label, count in lines.items())
