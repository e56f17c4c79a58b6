"""The run's account: customers per outcome and reason, the funnel named for people, the report.

Built from the chunks after the record stage, outside the flow, as typed values: `Counts` keys
outcomes and (outcome, reason) pairs as they are, never as joined strings to split again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypedDict

import pandas as pd

from connectors.masking import mask_phone
from connectors.vocabulary import (
    DEFERRAL_REASONS,
    OUTCOME,
    PHONE_E164,
    REASON,
    Outcome,
    Reason,
)
from connectors.whatsapp import PhoneFacts
from tasks.frame import Pair
from tasks.rules.budget import RuleStats


@dataclass(frozen=True)
class Counts:
    """Customers per outcome, and per (outcome, reason)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    pairs: Counter[Pair] = field(default_factory=Counter)

    @classmethod
    def of(cls, frames: list[pd.DataFrame]) -> Counts:
        """Count the outcomes of every chunk."""
        outcomes: Counter[str] = Counter()
        pairs: Counter[Pair] = Counter()
        for frame in frames:
            outcome = frame[OUTCOME].astype(object).where(frame[OUTCOME].notna(), "none")
            reason = frame[REASON].astype(object).where(frame[REASON].notna(), None)
            outcomes.update(outcome.tolist())
            pairs.update(zip(outcome.tolist(), reason.tolist(), strict=True))
        return cls(outcomes, pairs)

    @classmethod
    def of_pairs(cls, pairs: Mapping[Pair, int]) -> Counts:
        """From customers per (outcome, reason), e.g. a `Tally` of recorded customers."""
        outcomes: Counter[str] = Counter()
        for (outcome, _), n in pairs.items():
            outcomes[outcome] += n
        return cls(outcomes, Counter(pairs))

    @property
    def customers(self) -> int:
        """Every customer counted."""
        return sum(self.outcomes.values())

    def outcome(self, outcome: str, reason: str | None = None) -> int:
        """Customers with this outcome (and this reason, when given)."""
        return self.outcomes[outcome] if reason is None else self.pairs[(outcome, reason)]


# Failed sends that never reached the API: counted on lines of their own.
_PARAMETER_REASONS: Final = (Reason.MISSING_PARAMETER, Reason.INVALID_PARAMETER)


def funnel(counts: Counts, delivery: dict[str, int] | None = None) -> dict[str, int]:
    """Ordered funnel lines, and the delivery statuses webhooks reported so far."""
    already = counts.outcome(Outcome.SENT, Reason.ALREADY_SENT)
    unsent = sum(counts.outcome(Outcome.SEND_FAILED, r) for r in _PARAMETER_REASONS)
    stopped = counts.outcome(Outcome.EXCLUDED_NO_CONSENT, Reason.STOPPED_MARKETING)
    no_language = counts.outcome(Outcome.EXCLUDED_POLICY, Reason.NO_TEMPLATE_LANGUAGE)
    lines = {
        "customers read": counts.customers,
        "excluded: no customer id": counts.outcome(Outcome.EXCLUDED_INVALID_CUSTOMER_ID),
        "excluded: no consent": counts.outcome(Outcome.EXCLUDED_NO_CONSENT) - stopped,
        "excluded: stopped marketing messages": stopped,
        "excluded: marketing paused in the region": counts.outcome(Outcome.EXCLUDED_POLICY)
        - no_language,
        "excluded: no template in their language": no_language,
        "excluded: invalid number": counts.outcome(Outcome.EXCLUDED_INVALID_NUMBER),
        "excluded: duplicate number": counts.outcome(Outcome.EXCLUDED_DUPLICATE),
        "excluded: not on WhatsApp": counts.outcome(Outcome.EXCLUDED_NOT_ON_WHATSAPP),
        "contact check failed": counts.outcome(Outcome.CHECK_FAILED),
        "deferred: messaging limit (24 h)": counts.outcome(
            Outcome.DEFERRED, Reason.MESSAGING_LIMIT
        ),
        "deferred: outside the send window": counts.outcome(
            Outcome.DEFERRED, Reason.OUTSIDE_SEND_WINDOW
        ),
        "deferred: Meta's per-user marketing limit": counts.outcome(
            Outcome.DEFERRED, Reason.MARKETING_LIMITED
        ),
        "deferred: their sender stopped": counts.outcome(Outcome.DEFERRED, Reason.SENDER_STOPPED),
        "planned (dry run)": counts.outcome(Outcome.PLANNED),
        "sent in this run": counts.outcome(Outcome.SENT) - already,
        "sent by an earlier run": already,
        "failed: missing template parameter": counts.outcome(
            Outcome.SEND_FAILED, Reason.MISSING_PARAMETER
        ),
        "failed: template parameter invalid": counts.outcome(
            Outcome.SEND_FAILED, Reason.INVALID_PARAMETER
        ),
        "failed: API refused": counts.outcome(Outcome.SEND_FAILED) - unsent,
        "unknown (in doubt after a crash)": counts.outcome(Outcome.UNKNOWN),
    }
    if delivery is not None:
        lines["delivered (webhooks so far)"] = delivery.get(Outcome.DELIVERED, 0) + delivery.get(
            Outcome.READ, 0
        )
        lines["read (webhooks so far)"] = delivery.get(Outcome.READ, 0)
        lines["failed after sending (webhooks)"] = delivery.get(Outcome.FAILED, 0)
    return lines


def format_funnel(lines: dict[str, int]) -> str:
    """The funnel as an aligned text table."""
    width = max(len(label) for label in lines)
    return "\n".join(f"  {label:<{width}}  {count:>9,}" for label, count in lines.items())


_FAILURES: Final = (Outcome.SEND_FAILED, Outcome.CHECK_FAILED, Outcome.UNKNOWN)


def top_failures(counts: Counts, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent failures and doubts, as (`outcome: reason`, customers)."""
    pairs = [
        (f"{outcome}: {reason or '-'}", n)
        for (outcome, reason), n in counts.pairs.items()
        if outcome in _FAILURES
    ]
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:limit]


def top_exclusions(counts: Counts, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent exclusions and deferrals, as (`outcome: reason`, customers)."""
    pairs = [
        (f"{outcome}: {reason or '-'}", n)
        for (outcome, reason), n in counts.pairs.items()
        if outcome.startswith("excluded") or outcome == Outcome.DEFERRED
    ]
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))[:limit]


def failure_examples(frames: list[pd.DataFrame], limit: int = 5) -> list[tuple[str, str, str]]:
    """A few failed customers as (masked number, outcome, reason), for the run summary."""
    examples: list[tuple[str, str, str]] = []
    for frame in frames:
        rows = frame.loc[frame[OUTCOME].isin(_FAILURES) & frame[PHONE_E164].notna()]
        for phone, outcome, reason in (
            rows[[PHONE_E164, OUTCOME, REASON]].head(limit).itertuples(index=False)
        ):
            examples.append((mask_phone(str(phone)), str(outcome), str(reason)))
            if len(examples) >= limit:
                return examples
    return examples


def describe_senders(facts: Mapping[str, PhoneFacts | None]) -> str:
    """Each sender in a few words, with what the API said of it (Cloud), for logs and reports."""
    return "; ".join(_describe(sender, fact) for sender, fact in facts.items())


def _describe(sender: str, facts: PhoneFacts | None) -> str:
    if facts is None:
        return sender
    limit = (
        f"{facts.messaging_limit:,} unique recipients / 24 h"
        if facts.messaging_limit is not None
        else ("unlimited" if facts.limit_known else "messaging limit unknown")
    )
    return (
        f"{sender} ({facts.display_phone_number or 'number not shown'}, quality "
        f"{facts.quality_rating or '?'}, throughput {facts.throughput_level or '?'}, {limit})"
    )


class RunReport(TypedDict):
    """What one run did, for the CLI, the artifacts, the run's row and the flow's caller."""

    run_id: str
    attempt: int
    campaign_id: str
    template: str
    dry_run: bool
    funnel: dict[str, int]
    counts: dict[str, int]
    api: str
    contacts_checked: int
    contacts_from_cache: int
    suppressed_undeliverable: int
    in_doubt_from_earlier_runs: int
    messages_sent: int
    send_seconds: float
    send_rate: float
    rate_limit: float
    top_failures: list[tuple[str, int]]
    top_exclusions: list[tuple[str, int]]
    failure_examples: list[tuple[str, str, str]]
    warehouse: str
    senders: str
    run_counts: dict[str, int]
    messaging_limit: int | None
    messaged_in_window: int
    costs: list[str]


@dataclass(frozen=True)
class RunFacts:
    """What the flow knows of a run besides its customers' outcomes."""

    run_id: str
    attempt: int
    campaign_id: str
    template: str
    dry_run: bool
    rate_limit: float
    warehouse: str  # masked
    contacts_checked: int = 0
    contacts_from_cache: int = 0
    in_doubt_from_earlier_runs: int = 0
    send_seconds: float = 0.0
    senders: str = ""  # each sender with its facts (Cloud), for the summary
    api: str = "onprem"
    suppressed: int = 0  # Cloud: numbers left out as recently undeliverable
    limit: RuleStats = field(default_factory=RuleStats)  # the 24-hour messaging limit
    costs: tuple[str, ...] = ()  # the cost table's markdown lines (estimate beside billed)


def build_report(
    facts: RunFacts,
    counts: Counts,
    examples: list[tuple[str, str, str]],
    delivery: dict[str, int],
) -> RunReport:
    """The run's report from its customers' outcomes, a few failures to show (masked) and the
    delivery statuses so far."""
    lines = funnel(counts, delivery)
    sent_now = lines["sent in this run"]
    seconds = facts.send_seconds
    return RunReport(
        run_id=facts.run_id,
        attempt=facts.attempt,
        campaign_id=facts.campaign_id,
        template=facts.template,
        dry_run=facts.dry_run,
        funnel=lines,
        counts=dict(counts.outcomes),
        api=facts.api,
        contacts_checked=facts.contacts_checked,
        contacts_from_cache=facts.contacts_from_cache,
        suppressed_undeliverable=facts.suppressed,
        in_doubt_from_earlier_runs=facts.in_doubt_from_earlier_runs,
        messages_sent=sent_now,
        send_seconds=seconds,
        send_rate=sent_now / seconds if seconds > 0 else 0.0,
        rate_limit=facts.rate_limit,
        top_failures=top_failures(counts),
        top_exclusions=top_exclusions(counts),
        failure_examples=examples[:5],
        warehouse=facts.warehouse,
        senders=facts.senders,
        messaging_limit=facts.limit.limit,
        costs=list(facts.costs),
        messaged_in_window=facts.limit.messaged_in_window,
        run_counts={
            **counts.outcomes,
            **{f"deferred_{r}": counts.outcome(Outcome.DEFERRED, r) for r in DEFERRAL_REASONS},
            "customers": counts.customers,
            "contacts_checked": facts.contacts_checked,
            "contacts_from_cache": facts.contacts_from_cache,
            "messages_sent": sent_now,
        },
    )
