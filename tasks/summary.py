"""The funnel: how many customers each stage let through, named for people and for machines."""

from __future__ import annotations

from typing import Final

import pandas as pd

from connectors.vocabulary import OUTCOME, PHONE_E164, REASON, Outcome, Reason

# (label, key in the counts of tasks.record.outcome_counts)
FUNNEL_LINES: Final = (
    ("excluded: no customer id", Outcome.EXCLUDED_INVALID_CUSTOMER_ID),
    ("excluded: no consent", Outcome.EXCLUDED_NO_CONSENT),
    ("excluded: invalid number", Outcome.EXCLUDED_INVALID_NUMBER),
    ("excluded: duplicate number", Outcome.EXCLUDED_DUPLICATE),
    ("excluded: not on WhatsApp", Outcome.EXCLUDED_NOT_ON_WHATSAPP),
    ("contact check failed", Outcome.CHECK_FAILED),
    ("planned (dry run)", Outcome.PLANNED),
    ("sent in this run", "sent_now"),
    ("sent by an earlier run", f"{Outcome.SENT}:{Reason.ALREADY_SENT}"),
    ("failed: missing template parameter", f"{Outcome.SEND_FAILED}:{Reason.MISSING_PARAMETER}"),
    ("failed: template parameter too long", f"{Outcome.SEND_FAILED}:{Reason.INVALID_PARAMETER}"),
    ("failed: API refused", "send_failed_api"),
    ("unknown (in doubt after a crash)", Outcome.UNKNOWN),
)


def funnel(counts: dict[str, int], delivery: dict[str, int] | None = None) -> dict[str, int]:
    """Ordered funnel lines from per-outcome and per-`outcome:reason` counts, and the delivery
    statuses webhooks reported so far for the campaign's messages."""
    derived = dict(counts)
    derived["sent_now"] = counts.get(Outcome.SENT, 0) - counts.get(
        f"{Outcome.SENT}:{Reason.ALREADY_SENT}", 0
    )
    derived["send_failed_api"] = counts.get(Outcome.SEND_FAILED, 0) - sum(
        counts.get(f"{Outcome.SEND_FAILED}:{reason}", 0)
        for reason in (Reason.MISSING_PARAMETER, Reason.INVALID_PARAMETER)
    )
    total = sum(v for k, v in counts.items() if ":" not in k)
    lines = {"customers read": total}
    lines.update({label: derived.get(key, 0) for label, key in FUNNEL_LINES})
    if delivery is not None:
        lines["delivered (webhooks so far)"] = delivery.get("delivered", 0) + delivery.get(
            "read", 0
        )
        lines["read (webhooks so far)"] = delivery.get("read", 0)
        lines["failed after sending (webhooks)"] = delivery.get("failed", 0)
    return lines


def format_funnel(lines: dict[str, int]) -> str:
    """The funnel as an aligned text table."""
    width = max(len(label) for label in lines)
    return "\n".join(f"  {label:<{width}}  {count:>9,}" for label, count in lines.items())


def mask_phone(e164: str) -> str:
    """A number safe for logs and artifacts: `+4917******89`."""
    if len(e164) <= 7:
        return "*" * len(e164)
    return e164[:5] + "*" * (len(e164) - 7) + e164[-2:]


def stage_line(stage: str, frames: list[pd.DataFrame], seconds: float) -> str:
    """One log line per stage: customers, how many are out so far, and the time it took."""
    total = sum(len(f) for f in frames)
    settled = sum(int(f[OUTCOME].notna().sum()) for f in frames)
    return (
        f"{stage}: {total:,} customers, {total - settled:,} still in the running, "
        f"{settled:,} with an outcome ({seconds:.2f} s)"
    )


def top_failures(counts: dict[str, int], limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent `outcome:reason` pairs among failures and doubts."""
    failed = (Outcome.SEND_FAILED, Outcome.CHECK_FAILED, Outcome.UNKNOWN)
    pairs = [(k, v) for k, v in counts.items() if ":" in k and k.split(":", 1)[0] in failed]
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:limit]


def failure_examples(frames: list[pd.DataFrame], limit: int = 5) -> list[tuple[str, str, str]]:
    """A few failed customers as (masked number, outcome, reason), for the run summary."""
    failed = (Outcome.SEND_FAILED, Outcome.CHECK_FAILED, Outcome.UNKNOWN)
    examples: list[tuple[str, str, str]] = []
    for frame in frames:
        rows = frame.loc[frame[OUTCOME].isin(failed) & frame[PHONE_E164].notna()]
        for phone, outcome, reason in (
            rows[[PHONE_E164, OUTCOME, REASON]].head(limit).itertuples(index=False)
        ):
            examples.append((mask_phone(str(phone)), str(outcome), str(reason)))
            if len(examples) >= limit:
                return examples
    return examples
