"""Several senders in one campaign, over real HTTP: each number through its assigned sender (its
contact checked on its own v1 server), and one sender stopping for a cause of its own while the
others finish."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from connectors.vocabulary import OUTCOME, PHONE_E164, REASON, WA_ID, Outcome, Reason
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import acquire
from connectors.warehouse.schema import deliveries
from connectors.whatsapp import Template
from connectors.whatsapp.cloud.sandbox import RunningCloudSandbox, start_cloud_sandbox
from connectors.whatsapp.onprem.sandbox import SandboxConfig, start_sandbox
from tasks.send.loop import SenderStoppedError
from tasks.send.senders import SenderPlan, assign_senders
from tasks.send.share import defer_stopped
from tasks.send.task import send
from tasks.template import Fill
from tasks.verify.task import verify_on_each
from tests.helpers import cloud_plan, make_chunk, one_number_sandbox, sandbox_settings

WELCOME = Template(None, "welcome", "en", "UTILITY", "POSITIONAL")
NUMBERS = ("106540352242001", "106540352242002", "106540352242003")


@pytest.fixture
def sandboxes() -> Iterator[list[RunningCloudSandbox]]:
    """Three Cloud numbers, each behind its own sandbox; the second hits its spam limit at once."""
    spam = {"fault_script": {"messages": ("code:131048",)}}
    configs = [
        one_number_sandbox(NUMBERS[0]),
        one_number_sandbox(NUMBERS[1], **spam),
        one_number_sandbox(NUMBERS[2]),
    ]
    with ExitStack() as stack:
        yield [stack.enter_context(start_cloud_sandbox(c)) for c in configs]


def _verified(count: int) -> pd.DataFrame:
    phones = [f"+5511987{i:05d}1" for i in range(count)]
    frame = make_chunk(phones)
    frame[WA_ID] = pd.Series([p[1:] for p in phones], dtype="str")
    return frame


def test_one_sender_stops_on_its_spam_limit_while_the_others_finish(
    sandboxes: list[RunningCloudSandbox], sqlite_url: str
) -> None:
    engine = warehouse(sqlite_url)
    held = acquire(engine, "portfolio", "r#1", timedelta(minutes=5))
    plans = [cloud_plan(s) for s in sandboxes]
    frames = [_verified(90), _verified(60).assign(customer_id=lambda f: "b" + f["customer_id"])]
    frames[1][PHONE_E164] = frames[1][PHONE_E164].str.replace("+5511", "+5521")
    frames[1][WA_ID] = frames[1][PHONE_E164].str[1:]

    sent = send(
        frames,
        lease=held,
        run_id="r",
        fill=Fill.plain(WELCOME),
        senders=plans,
        warehouse_url=sqlite_url,
    )

    blocked = plans[1].sender_id
    assert list(sent.stopped) == [blocked] and "131048" in sent.stopped[blocked]
    out = pd.concat(sent.frames, ignore_index=True)
    owner = assign_senders(out[PHONE_E164], [p.sender_id for p in plans])
    assert set(Counter(owner).values()) != {len(out)}  # every sender got some numbers
    theirs = out.loc[owner != blocked]
    assert (theirs[OUTCOME] == Outcome.SENT).all()
    # The blocked number sent nothing after its first answer; the rest of its share waits.
    mine = out.loc[owner == blocked]
    assert (mine[OUTCOME] == Outcome.SENT).sum() <= plans[1].concurrency
    waiting = mine.loc[mine[OUTCOME] == Outcome.DEFERRED]
    assert len(waiting) >= len(mine) - plans[1].concurrency
    assert (waiting[REASON] == Reason.SENDER_STOPPED).all()
    # Each message went out through its assigned number, and the ledger says which.
    for sandbox, plan in zip(sandboxes, plans, strict=True):
        to = {"+" + m.to for m in sandbox.state.messages_sent()}
        assert to <= set(out.loc[owner == plan.sender_id, PHONE_E164])
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.phone_e164, deliveries.c.sender)).all()
    recorded = dict(rows)
    assert len(recorded) >= len(theirs)
    pairs = zip(out[PHONE_E164], owner, strict=True)
    assert all(recorded[p] == o for p, o in pairs if p in recorded)
    assert sum(1 for s in recorded.values() if s == blocked) <= plans[1].concurrency


def test_a_campaign_level_failure_stops_every_sender(
    sandboxes: list[RunningCloudSandbox], sqlite_url: str
) -> None:
    engine = warehouse(sqlite_url)
    held = acquire(engine, "paused", "r#1", timedelta(minutes=5))
    plans = [cloud_plan(s) for s in (sandboxes[0], sandboxes[2])]
    paused = Template(None, "no_such_template", "en", "UTILITY", "POSITIONAL")

    with pytest.raises(Exception, match="132001") as caught:
        send(
            [_verified(200)],
            lease=held,
            run_id="r",
            fill=Fill.plain(paused),
            senders=plans,
            warehouse_url=sqlite_url,
        )

    assert not isinstance(caught.value, SenderStoppedError)
    sent = sum(len(s.state.messages_sent()) for s in sandboxes)
    assert sent == 0
    attempts = sum(len(s.state.requests_to("messages")) for s in (sandboxes[0], sandboxes[2]))
    assert attempts <= 2 * plans[0].concurrency  # both stopped at their first answers


def test_customers_of_a_stopped_sender_are_deferred_and_the_rest_untouched() -> None:
    frame = _verified(6)
    owner = pd.Series(["a", "b", "a", "b", "a", "b"], index=frame.index)
    frame.loc[0, OUTCOME] = Outcome.SENT

    out = defer_stopped(frame, owner, {"b": "spam limit"})

    assert list(out[OUTCOME].fillna("-")) == ["sent", "deferred", "-", "deferred", "-", "deferred"]
    assert set(out.loc[owner == "b", REASON]) == {Reason.SENDER_STOPPED}


def test_each_v1_server_checks_only_its_own_numbers_and_a_stopped_one_checks_none(
    sqlite_url: str,
) -> None:
    config = SandboxConfig(rate_limit_messages=None, rate_limit_other=None)
    with ExitStack() as stack:
        servers = [stack.enter_context(start_sandbox(config)) for _ in range(3)]
        plans = [SenderPlan(sandbox_settings(s), rate_per_s=100, concurrency=4) for s in servers]
        plans[2] = dataclasses.replace(plans[2], stopped="sender stopped: credentials")
        phones = [f"+5511987{i:05d}1" for i in range(60)]
        frames = [make_chunk(phones[:25]), make_chunk(phones[25:])]

        out, stats = verify_on_each(frames, plans, warehouse_url=sqlite_url, batch_size=1000)

        owner = assign_senders(pd.Series(phones), [p.sender_id for p in plans])
        asked = [set(s.state.contacts_checked()) for s in servers]
    assert [list(f["customer_id"]) for f in out] == [list(f["customer_id"]) for f in frames]
    joined = pd.concat(out, ignore_index=True)
    for server, plan, numbers in zip(servers, plans, asked, strict=True):
        mine = set(pd.Series(phones)[owner == plan.sender_id])
        assert mine, f"{server.url} got no numbers"
        if plan.stopped:
            assert numbers == set()
            assert joined.loc[joined[PHONE_E164].isin(mine), WA_ID].isna().all()
        else:
            assert {f"+{n.lstrip('+')}" for n in numbers} == mine
    assert stats.checked == len(phones) - int((owner == plans[2].sender_id).sum())
