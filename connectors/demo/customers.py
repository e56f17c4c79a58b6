"""A reproducible crowd of messy, realistic customers, each with the outcome it must end with."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connectors.demo.generator import (
    DEFAULT_NOW,
    INVALID_REASONS,
    Draft,
    Generator,
    consent_reason,
)
from connectors.vocabulary import Contact, Outcome, Reason
from connectors.whatsapp.onprem.sandbox import rules


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """One crm_contacts row and the outcome the campaign must give it, known by construction."""

    id: int
    fname: str | None
    lname: str | None
    mobile: str | None
    cc: str | None
    optin: datetime | None
    optout: datetime | None
    email: str | None
    expected_outcome: str
    expected_reason: str | None
    expected_e164: str | None  # set whenever the number is valid, whatever the outcome
    expected_duplicate_of: str | None
    expected_wa_id: str | None
    number_format: str  # one of NUMBER_FORMATS, or "invalid"

    def row(self) -> dict[str, object]:
        """The crm_contacts columns of this customer."""
        return {
            "id": self.id, "fname": self.fname, "lname": self.lname, "mobile": self.mobile,
            "cc": self.cc, "optin": self.optin, "optout": self.optout, "email": self.email,
        }  # fmt: skip


def demo_customers(
    n: int = 3000, *, seed: int = 7, now: datetime | None = None
) -> list[DemoCustomer]:
    """`n` demo customers, ids 1..n, identical for a seed, each with the outcome it must get."""
    rng = random.Random(seed)
    now = (now or DEFAULT_NOW).replace(microsecond=0)  # MariaDB DATETIME keeps whole seconds
    gen = Generator(rng, now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC))
    no_opt_in, opted_out, invalid, duplicates = (round(n * s) for s in (0.06, 0.04, 0.06, 0.10))
    kept = _kept(gen, rng, n - no_opt_in - opted_out - invalid - duplicates)
    others = _invalid(gen, invalid) + _without_consent(gen, rng, kept, no_opt_in, opted_out)
    ties: dict[int, list[Draft]] = {}
    others += _duplicates(gen, rng, kept, duplicates if kept else 0, ties)
    everyone = _dealt(rng, kept + others, ties)
    _check_duplicates(everyone)
    return [_expect(c) for c in everyone]


def _kept(gen: Generator, rng: random.Random, count: int) -> list[Draft]:
    """Customers who consented, with a number of their own (some not on WhatsApp)."""
    kept: list[Draft] = []
    for _ in range(count):
        if rng.random() < 0.03:  # re-consented: an opt-out before the latest opt-in does not count
            optout = gen.past(900, 30)
            customer = gen.customer(optout + timedelta(seconds=rng.randint(3600, 20 * 86400)))
            customer.optout = optout
        else:
            customer = gen.customer(gen.past())
        if rng.random() < 0.012:
            customer.fname = rng.choice((None, "", "   "))
        gen.write(customer, gen.number(customer.region, on_whatsapp=rng.random() >= 0.1))
        kept.append(customer)
    return kept


def _invalid(gen: Generator, count: int) -> list[Draft]:
    """Consenting customers whose number is invalid, every reason in turn."""
    drafts = []
    for i in range(count):
        customer = gen.customer(gen.past())
        gen.invalid(customer, INVALID_REASONS[i % len(INVALID_REASONS)])
        drafts.append(customer)
    return drafts


def _without_consent(
    gen: Generator, rng: random.Random, kept: list[Draft], no_opt_in: int, opted_out: int
) -> list[Draft]:
    """Customers who never opted in, then customers who withdrew."""
    drafts = []
    for i in range(no_opt_in + opted_out):
        roll = rng.random()
        # Now and then a kept customer's number again, without consent: never a duplicate.
        original = rng.choice(kept) if kept and roll < 0.15 else None
        customer = gen.customer(None, original.region if original else None)
        if i >= no_opt_in:  # withdrawn: an opt-out at or after the opt-in, or with none at all
            customer.optin = gen.past(1000, 60) if rng.random() < 0.8 else None
            customer.optout = (
                gen.past()
                if customer.optin is None
                else customer.optin
                + timedelta(seconds=0 if rng.random() < 0.05 else rng.randint(1, 50 * 86400))
            )
        if original is not None and original.number is not None:
            gen.write(customer, original.number, avoid=original.fmt)
        elif roll < 0.25:
            gen.invalid(customer, rng.choice(INVALID_REASONS))
        else:
            gen.write(customer, gen.number(customer.region, on_whatsapp=rng.random() >= 0.1))
        drafts.append(customer)
    return drafts


def _duplicates(
    gen: Generator,
    rng: random.Random,
    kept: list[Draft],
    count: int,
    ties: dict[int, list[Draft]],
) -> list[Draft]:
    """Customers sharing a kept customer's number with an older (or the same) opt-in."""
    drafts = []
    for _ in range(count):
        original = rng.choice(kept)
        assert original.optin is not None and original.number is not None
        tie = rng.random() < 0.25  # the same opt-in instant (a bulk import): the smaller id is kept
        older = timedelta(seconds=0 if tie else rng.randint(3600, 400 * 86400))
        customer = gen.customer(original.optin - older, original.region)
        if rng.random() < 0.5:
            customer.fname, customer.lname = original.fname, original.lname
        customer.original = original
        gen.write(customer, original.number, avoid=original.fmt)
        if tie:
            ties.setdefault(id(original), [original]).append(customer)
        drafts.append(customer)
    return drafts


def _dealt(rng: random.Random, everyone: list[Draft], ties: dict[int, list[Draft]]) -> list[Draft]:
    """Ids dealt out in a shuffled order; in a tie, the kept customer gets the smallest."""
    rng.shuffle(everyone)
    for position, customer in enumerate(everyone, start=1):
        customer.id = position
    for group in ties.values():
        for customer, smallest_first in zip(group, sorted(c.id for c in group), strict=True):
            customer.id = smallest_first
    return sorted(everyone, key=lambda c: c.id)


def _check_duplicates(drafts: list[Draft]) -> None:
    """Fail loudly if the dedupe rule, applied from scratch, keeps another than constructed."""
    kept: dict[str, Draft] = {}
    eligible = [c for c in drafts if consent_reason(c.optin, c.optout) is None and c.e164]
    for c in eligible:
        best = kept.setdefault(c.e164 or "", c)
        if (c.optin, -c.id) > (best.optin, -best.id):
            kept[c.e164 or ""] = c
    for c in eligible:
        if kept[c.e164 or ""] is not (c.original or c):
            raise RuntimeError(f"demo customer {c.id}: duplicate construction is inconsistent")


def _expect(c: Draft) -> DemoCustomer:
    consent = consent_reason(c.optin, c.optout)
    outcome, reason, duplicate_of, wa_id = Outcome.SENT, None, None, None
    if consent is not None:
        outcome, reason = Outcome.EXCLUDED_NO_CONSENT, consent
    elif c.e164 is None:
        outcome, reason = Outcome.EXCLUDED_INVALID_NUMBER, c.number_reason
    elif c.original is not None:
        outcome, reason, duplicate_of = (
            Outcome.EXCLUDED_DUPLICATE,
            Reason.DUPLICATE,
            str(c.original.id),
        )
    elif c.fname is None or not c.fname.strip():
        outcome, reason = Outcome.SEND_FAILED, Reason.MISSING_PARAMETER
    else:
        status, wa_id = rules.contact_status(c.e164)
        if status != Contact.VALID:
            outcome, reason = Outcome.EXCLUDED_NOT_ON_WHATSAPP, Reason.NOT_ON_WHATSAPP
    columns = (c.id, c.fname, c.lname, c.mobile, c.cc, c.optin, c.optout, c.email)
    return DemoCustomer(*columns, outcome, reason, c.e164, duplicate_of, wa_id, c.fmt)


def expected_by_id(customers: Sequence[DemoCustomer]) -> dict[str, DemoCustomer]:
    """The customers keyed by str(id), the way the pipeline's customer_id reads."""
    return {str(c.id): c for c in customers}


def expected_funnel(customers: Sequence[DemoCustomer]) -> dict[str, int]:
    """How many customers must end in each outcome, largest first."""
    return dict(Counter(c.expected_outcome for c in customers).most_common())
