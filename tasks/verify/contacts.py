"""The v1 contact check: which numbers are on WhatsApp, from the 7-day cache or one batched
`/v1/contacts` call; only numbers about to be messaged, never more than will be."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.errors import StopRunError
from connectors.vocabulary import (
    CACHEABLE_CONTACT_STATUSES,
    OUTCOME,
    PHONE_E164,
    REASON,
    WA_ID,
    Contact,
    Outcome,
    Reason,
)
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import opted_out_wa_ids
from connectors.warehouse.records import fresh_checks, save_checks
from connectors.whatsapp import ContactChecker, WhatsAppSettings, open_sender
from tasks.frame import in_running
from tasks.verify.common import VerifyStats, exclude_stopped, numbers_to_check

CACHE_MAX_AGE = timedelta(days=7)


class CheckPolicyError(StopRunError):
    """A run would check more numbers than it will message: refused before any call."""


def answer_table(answers: Mapping[str, tuple[str, str | None]]) -> pd.DataFrame:
    """Answers as a frame indexed by number (`status`, `wa_id`): built once, so every chunk's
    lookup reuses one hash table instead of building its own."""
    return pd.DataFrame(
        list(answers.values()),
        index=pd.Index(list(answers), dtype="str"),
        columns=["status", "wa_id"],
        dtype="str",
    )


def apply_checks(
    frame: pd.DataFrame, answers: Mapping[str, tuple[str, str | None]] | pd.DataFrame
) -> pd.DataFrame:
    """Set `wa_id` for WhatsApp users and exclude the rest with their reason."""
    table = answers if isinstance(answers, pd.DataFrame) else answer_table(answers)
    out = frame.copy()
    running = in_running(out)
    phones = out[PHONE_E164]
    status = phones.map(table["status"]).where(running)
    wa_id = phones.map(table["wa_id"]).where(running)
    valid = running & (status == Contact.VALID) & wa_id.notna()
    invalid = running & (status == Contact.INVALID)
    failed = running & ~valid & ~invalid
    out.loc[valid, WA_ID] = wa_id[valid].astype("str")
    out.loc[invalid, OUTCOME] = Outcome.EXCLUDED_NOT_ON_WHATSAPP
    out.loc[invalid, REASON] = Reason.NOT_ON_WHATSAPP
    out.loc[failed, OUTCOME] = Outcome.CHECK_FAILED
    out.loc[failed, REASON] = (
        status[failed]
        .map({Contact.PROCESSING: Reason.CHECK_PROCESSING})
        .fillna(Reason.CHECK_FAILED)
    )
    return out


async def check_numbers(
    client: ContactChecker,
    phones: list[str],
    *,
    cached: Mapping[str, tuple[str, str | None]],
    batch_size: int,
) -> dict[str, tuple[str, str | None]]:
    """Answers for every phone: the cache's where fresh, the API's for the rest."""
    answers = dict(cached)
    missing = [p for p in phones if p not in cached]
    if missing:
        checks = await client.check_contacts(missing, batch_size=batch_size)
        answers.update({p: (c.status, c.wa_id) for p, c in checks.items()})
    return answers


def verify(
    frames: list[pd.DataFrame],
    *,
    whatsapp: WhatsAppSettings,
    warehouse_url: str,
    batch_size: int,
    now: datetime | None = None,
) -> tuple[list[pd.DataFrame], VerifyStats]:
    """Check only numbers about to be messaged, reusing checks younger than 7 days."""
    now = now or datetime.now(UTC)
    phones = numbers_to_check(frames)
    engine = warehouse(warehouse_url)
    sender = whatsapp.sender_id
    cached = fresh_checks(engine, phones, not_before=now - CACHE_MAX_AGE, sender=sender)
    to_message = sum(int(in_running(f).sum()) for f in frames)
    if len(phones) - len(cached) > to_message:
        raise CheckPolicyError(
            f"would check {len(phones) - len(cached)} numbers to message {to_message}; refused"
        )

    async def run() -> dict[str, tuple[str, str | None]]:
        async with open_sender(whatsapp) as client:
            if not isinstance(client, ContactChecker):
                raise CheckPolicyError(f"sender {client.sender_id} cannot check contacts")
            return await check_numbers(client, phones, cached=cached, batch_size=batch_size)

    answers = asyncio.run(run()) if len(cached) < len(phones) else dict(cached)
    fresh = [
        {"phone_e164": p, "status": s, "wa_id": w, "checked_at": now, "sender": sender}
        for p, (s, w) in answers.items()
        if p not in cached and s in CACHEABLE_CONTACT_STATUSES
    ]
    stats = VerifyStats(checked=len(phones) - len(cached), from_cache=len(cached))
    # The cache is written while the answers are applied: mostly the database's time, not ours.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save-checks") as pool:
        saving = pool.submit(save_checks, engine, fresh)
        # A STOP is stored under the wa_id it came from, which may differ from the E.164 digits.
        stopped = opted_out_wa_ids(engine)
        table = answer_table(answers)
        checked = [exclude_stopped(apply_checks(f, table), stopped) for f in frames]
        saving.result()
    return checked, stats
