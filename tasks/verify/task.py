"""The verify stage: the v1 contact check, or the Cloud API's reachability, by the senders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.vocabulary import PHONE_E164
from tasks.send.senders import SenderPlan, assign_senders
from tasks.verify.common import VerifyStats
from tasks.verify.contacts import verify
from tasks.verify.reachability import reach


def verify_frames(
    frames: list[pd.DataFrame],
    senders: list[SenderPlan],
    *,
    warehouse_url: str,
    batch_size: int,
    suppress_days: int = 30,
) -> tuple[list[pd.DataFrame], VerifyStats]:
    """The frames checked as the senders' API allows: the v1 contact check, each number on the
    server that will send to it, or (Cloud) the numbers earlier sends showed undeliverable."""
    going = [plan.settings for plan in senders if not plan.stopped]
    if not going:  # every sender stopped before sending: nothing to check for
        return frames, VerifyStats(0, 0)
    if going[0].api == "cloud":
        return reach(frames, warehouse_url=warehouse_url, suppress_days=suppress_days)
    if len(senders) == 1:
        return verify(frames, whatsapp=going[0], warehouse_url=warehouse_url, batch_size=batch_size)
    return verify_on_each(frames, senders, warehouse_url=warehouse_url, batch_size=batch_size)


def verify_on_each(
    frames: list[pd.DataFrame],
    senders: list[SenderPlan],
    *,
    warehouse_url: str,
    batch_size: int,
) -> tuple[list[pd.DataFrame], VerifyStats]:
    """The v1 contact check of several servers: each checks the numbers assigned to it (a
    contact is known only to the server that checked it), over the same assignment the send
    uses; a stopped server checks nothing (a check without a message risks the number). Chunks
    keep their row order."""
    ids = [plan.sender_id for plan in senders]
    owners = [assign_senders(f[PHONE_E164], ids).to_numpy() for f in frames]
    parts: list[list[pd.DataFrame]] = [[] for _ in frames]
    checked = from_cache = 0
    for plan in senders:
        mine = [f.iloc[o == plan.sender_id] for f, o in zip(frames, owners, strict=True)]
        if plan.stopped is None:
            mine, stats = verify(
                mine, whatsapp=plan.settings, warehouse_url=warehouse_url, batch_size=batch_size
            )
            checked, from_cache = checked + stats.checked, from_cache + stats.from_cache
        for part, frame in zip(parts, mine, strict=True):
            part.append(frame)
    rejoined = []
    for frame, owner, part in zip(frames, owners, parts, strict=True):
        order = np.concatenate([np.flatnonzero(owner == sender_id) for sender_id in ids])
        rejoined.append(pd.concat(part).iloc[np.argsort(order, kind="stable")])
        assert len(rejoined[-1]) == len(frame)
    return rejoined, VerifyStats(checked, from_cache)
