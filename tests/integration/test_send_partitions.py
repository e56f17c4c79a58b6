"""Each sender one stream over the run's partitions, as the send task runs it on any worker:
its rows of every partition stored with their outcomes, and a failure about the campaign in one
sender's task halting the others' through the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from connectors.vocabulary import OUTCOME, PHONE_E164, WA_ID, Outcome
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease, acquire
from connectors.whatsapp import Template
from connectors.whatsapp.cloud.sandbox import RunningCloudSandbox, start_cloud_sandbox
from tasks.partition.store import Store
from tasks.send.senders import SenderPlan, assign_senders
from tasks.send.task import HALT, SenderDone, ready_name, send_partitions, sent_name
from tasks.template import Fill
from tests.helpers import cloud_plan, make_chunk, one_number_sandbox

WELCOME = Template(None, "welcome", "en", "UTILITY", "POSITIONAL")
NUMBERS = ("106540352242001", "106540352242002")


def _store(tmp_path: Path, partitions: int, per_partition: int) -> Store:
    """A run store with `partitions` verified partitions ready to send."""
    store = Store.for_run(tmp_path, "campaign", "run-1")
    for p in range(partitions):
        phones = [f"+55119{p:02d}{i:05d}1" for i in range(per_partition)]
        frame = make_chunk(phones)
        frame[WA_ID] = pd.Series([n[1:] for n in phones], dtype="str")
        store.write(ready_name(p), frame)
    return store


@pytest.fixture
def lease(sqlite_url: str) -> Lease:
    return acquire(warehouse(sqlite_url), "campaign", "run-1#1", timedelta(minutes=5))


@pytest.fixture
def two() -> Iterator[list[RunningCloudSandbox]]:
    with ExitStack() as stack:
        yield [stack.enter_context(start_cloud_sandbox(one_number_sandbox(n))) for n in NUMBERS]


def _send(
    store: Store,
    plan: SenderPlan,
    plans: list[SenderPlan],
    lease: Lease,
    url: str,
    template: Template = WELCOME,
) -> SenderDone:
    return send_partitions(
        store,
        [0, 1, 2],
        plan,
        senders=plans,
        lease=lease,
        run_id="run-1",
        fill=Fill.plain(template),
        warehouse_url=url,
    )


def test_each_sender_streams_its_own_rows_of_every_partition(
    two: list[RunningCloudSandbox], tmp_path: Path, lease: Lease, sqlite_url: str
) -> None:
    store = _store(tmp_path, 3, 40)
    plans = [cloud_plan(s) for s in two]

    done = [_send(store, plan, plans, lease, sqlite_url) for plan in plans]

    ids = [p.sender_id for p in plans]
    for p in range(3):
        ready = store.read(ready_name(p))
        pieces = [store.read(sent_name(p, i)) for i in range(2)]
        owner = assign_senders(ready[PHONE_E164], ids)
        for i, piece in enumerate(pieces):
            assert list(piece.index) == list(ready.index[owner == ids[i]])
            assert (piece[OUTCOME] == Outcome.SENT).all()
    assert sum(d.sent for d in done) == 120 and all(d.stopped is None for d in done)
    for sandbox, plan in zip(two, plans, strict=True):
        assert len(sandbox.state.messages_sent()) == next(
            d.sent for d in done if d.sender_id == plan.sender_id
        )


def test_a_campaign_failure_in_one_senders_task_halts_the_other_through_the_store(
    tmp_path: Path, lease: Lease, sqlite_url: str
) -> None:
    store = _store(tmp_path, 3, 300)
    unknown = {"fault_script": {"messages": ("code:132001",) * 50}}
    with ExitStack() as stack:
        failing = stack.enter_context(
            start_cloud_sandbox(one_number_sandbox(NUMBERS[0], **unknown))
        )
        slow = stack.enter_context(
            start_cloud_sandbox(one_number_sandbox(NUMBERS[1], latency_s=0.05))
        )
        plans = [cloud_plan(failing), cloud_plan(slow, rate=50)]
        other: list[SenderDone] = []
        thread = threading.Thread(
            target=lambda: other.append(_send(store, plans[1], plans, lease, sqlite_url))
        )
        thread.start()
        with pytest.raises(Exception, match="132001"):
            _send(store, plans[0], plans, lease, sqlite_url)
        thread.join(timeout=60)

        assert store.path(HALT).exists()
        assert not thread.is_alive() and other[0].stopped is None
        owned = sum(
            int(
                (
                    assign_senders(
                        store.read(ready_name(p))[PHONE_E164], [q.sender_id for q in plans]
                    )
                    == plans[1].sender_id
                ).sum()
            )
            for p in range(3)
        )
        # The slow sender stopped claiming soon after the halt: far fewer sends than its share.
        assert other[0].sent < owned / 2
        assert len(slow.state.messages_sent()) == other[0].sent
