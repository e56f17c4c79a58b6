"""Which partition each customer goes to: a stable hash of its E.164 number, so every duplicate
of a number meets the others in one partition, in any process and on any run."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from connectors.vocabulary import PHONE_E164

AUDIENCE_ROW: Final = "audience_row"
"""The customer's position in the audience as the CRM returned it (0-based): the order the
rules take customers in, and how a partition's rows are put back in audience order."""

_HASH_KEY: Final = "wa-partitions-v1"  # exactly 16 bytes, as pandas' hash needs


def partition_count(rows: int, partition_rows: int) -> int:
    """Partitions for an audience: about `partition_rows` customers each, at least one."""
    return max(1, math.ceil(rows / max(1, partition_rows)))


def partition_of(frame: pd.DataFrame, partitions: int) -> np.ndarray:
    """Each row's partition: by its number's hash, or, without a number (nothing to dedupe), by
    its audience position, which spreads those rows evenly."""
    phones = frame[PHONE_E164]
    has_phone = phones.notna().to_numpy(dtype=bool)
    by_row = frame[AUDIENCE_ROW].to_numpy(dtype=np.int64) % partitions
    if not has_phone.any():
        return by_row
    hashed = pd.util.hash_pandas_object(
        phones[has_phone].astype("str"), index=False, hash_key=_HASH_KEY
    ).to_numpy()
    out = by_row.copy()
    out[has_phone] = (hashed % np.uint64(partitions)).astype(np.int64)
    return out


def part_folder(partition: int) -> str:
    """The store folder of one partition."""
    return f"part-{partition:05d}"
