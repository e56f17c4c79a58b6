"""Extract: the campaign's audience out of the CRM, as frames of chunk size.

Extract already settles what it can judge alone, so later stages (which only touch rows whose
outcome is null) skip those rows:
  - a customer without a usable id is `excluded_invalid_customer_id`, with reason
    `missing_customer_id` (NULL, empty or whitespace-only text) or `unusable_customer_id` (text
    the warehouse cannot key on: longer than its id column, or holding NUL). Its `customer_id`
    becomes `null-id:<h>`, `h` the 8-byte blake2b hex digest of its raw phone and country, with
    `-2`, `-3`, ... added for the second and later rows that share it (in audience order,
    across chunks): stable across runs, clearly synthetic, unique within the campaign;
  - a customer whose `opt_in_at` or `opt_out_at` could not be read as a moment is
    `excluded_no_consent` / `unreadable_consent_date` (an unreadable opt-out might be a real one);
  - an audience that returns one customer_id on several rows (across chunks, after the ids are
    text, so 7, 7.0 and '7' are one id) is refused before anything is checked or sent.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.crm import UNREADABLE_CONSENT, Audience, AudienceError, crm_engine, read_audience
from connectors.masking import masked_errors
from connectors.vocabulary import COUNTRY, CUSTOMER_ID, OUTCOME, PHONE_RAW, REASON, Outcome, Reason
from connectors.warehouse.schema import ID
from tasks.frame import Tally, in_running, with_stage_columns
from tasks.partition.split import AUDIENCE_ROW
from tasks.partition.store import Store
from tasks.progress import run_log, shown

NULL_ID_PREFIX: Final = "null-id:"
_ID_LENGTH: Final = ID.length or 128
_SHOWN: Final = 5  # repeated ids named in the refusal


def _unusable_ids(ids: pd.Series) -> pd.Series:
    """Ids given but the warehouse cannot key a customer on."""
    return ids.notna() & (
        (ids.str.len() > _ID_LENGTH) | ids.str.contains("\x00", regex=False).fillna(False)
    )


def _null_id(phone: object, country: object) -> str:
    """The synthetic id of a customer without one, from its raw phone and country."""
    key = json.dumps([value if isinstance(value, str) else None for value in (phone, country)])
    return NULL_ID_PREFIX + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def name_missing_ids(
    chunks: list[pd.DataFrame], seen: Counter[str] | None = None
) -> list[pd.DataFrame]:
    """Give customers without a usable id a synthetic one and their outcome (module docstring);
    `seen` carries the ids given so far over the chunks of one audience."""
    seen = Counter() if seen is None else seen
    outs = []
    for chunk in chunks:
        out = chunk.copy()
        unusable = _unusable_ids(out[CUSTOMER_ID]).to_numpy(dtype=bool)
        missing = out[CUSTOMER_ID].isna().to_numpy(dtype=bool) | unusable
        names = []
        for phone, country in zip(out[PHONE_RAW][missing], out[COUNTRY][missing], strict=True):
            base = _null_id(phone, country)
            seen[base] += 1
            names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
        out.loc[missing, CUSTOMER_ID] = names
        out.loc[missing, OUTCOME] = Outcome.EXCLUDED_INVALID_CUSTOMER_ID
        out.loc[missing, REASON] = Reason.MISSING_CUSTOMER_ID
        out.loc[unusable, REASON] = Reason.UNUSABLE_CUSTOMER_ID
        outs.append(out)
    return outs


def exclude_unreadable_consent(chunk: pd.DataFrame) -> pd.DataFrame:
    """Exclude customers whose consent dates could not be read; drop the connector's marker."""
    if UNREADABLE_CONSENT not in chunk.columns:
        return chunk
    out = chunk.drop(columns=[UNREADABLE_CONSENT])
    unreadable = in_running(out) & chunk[UNREADABLE_CONSENT].to_numpy(dtype=bool)
    out.loc[unreadable, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
    out.loc[unreadable, REASON] = Reason.UNREADABLE_CONSENT_DATE
    return out


def refuse_duplicate_ids(ids: list[pd.Series]) -> None:
    """Refuse an audience that returns one customer_id on several rows, in any chunks."""
    if not ids:
        return
    every = pd.concat(ids, ignore_index=True)
    repeated = every[every.duplicated()].unique()
    if len(repeated) == 0:
        return
    shown = ", ".join(f'"{value[:40]}"' for value in repeated[:_SHOWN])
    raise AudienceError(
        f"audience returns {len(repeated):,} customer_id values on more than one row "
        f"(e.g. {shown}); make customer_id unique, e.g. with SELECT DISTINCT or GROUP BY "
        "customer_id"
    )


class Settler:
    """Settles an audience chunk by chunk, in audience order: synthetic ids count on over the
    chunks, each row gets its audience position, and the ids are remembered as 64-bit hashes
    (8 bytes a customer) so that repeated ones are found without holding the audience."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.rows = 0
        self.hashes: list[np.ndarray] = []

    def settle(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """One chunk with stage columns, its audience positions and what extract settles."""
        staged = with_stage_columns(chunk)
        staged[AUDIENCE_ROW] = np.arange(self.rows, self.rows + len(staged), dtype=np.int64)
        self.rows += len(staged)
        out = exclude_unreadable_consent(name_missing_ids([staged], self.seen)[0])
        self.hashes.append(_id_hashes(out[CUSTOMER_ID]))
        return out

    def repeated(self) -> np.ndarray:
        """The hashes of ids seen on more than one row."""
        if not self.hashes:
            return np.empty(0, dtype=np.uint64)
        every = np.sort(np.concatenate(self.hashes))
        return np.unique(every[1:][every[1:] == every[:-1]])


def _id_hashes(ids: pd.Series) -> np.ndarray:
    """Customer ids as 64-bit hashes, for finding repeated ones."""
    return pd.util.hash_pandas_object(ids.astype("str"), index=False).to_numpy()


def settle(chunks: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Chunks as the connector read them, with stage columns and what extract can settle."""
    settler = Settler()
    settled = [settler.settle(chunk) for chunk in chunks]
    refuse_duplicate_ids([chunk[CUSTOMER_ID] for chunk in settled])
    return settled


def extract(
    crm_url: str, audience: Audience, chunk_size: int, *, required_params: list[str] | None = None
) -> list[pd.DataFrame]:
    """Read the whole audience in chunks, settled (see the module docstring); refuse it when it
    does not return the `required_params` columns (the template's `param_*`)."""
    engine = crm_engine(crm_url)
    try:
        chunks = list(
            read_audience(engine, audience, chunk_size, required_params=required_params or ())
        )
    finally:
        engine.dispose()
    return settle(chunks)


@dataclass(frozen=True)
class Extracted:
    """The audience's chunks in the run's store, in audience order, and what extract settled."""

    chunks: list[str]
    tally: Tally


def chunk_name(index: int) -> str:
    """The store name of the audience's chunk `index`."""
    return f"chunks/{index:06d}"


def extract_to(
    store: Store,
    crm_url: str,
    audience: Audience,
    chunk_size: int,
    *,
    required_params: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Extracted:
    """Stream the audience into the store chunk by chunk, settled (module docstring): one chunk
    in memory at a time, and 8 bytes per customer to find repeated ids; `progress` hears the
    customers read after each chunk."""
    settler = Settler()
    names: list[str] = []
    counted = Tally()
    engine = crm_engine(crm_url)
    try:
        read = read_audience(engine, audience, chunk_size, required_params=required_params or ())
        for chunk in read:
            out = settler.settle(chunk)
            counted += Tally.of(out)
            names.append(chunk_name(len(names)))
            store.write(names[-1], out)
            if progress is not None:
                progress(counted.rows, 0)
    finally:
        engine.dispose()
    repeated = settler.repeated()
    if len(repeated):
        refuse_duplicate_ids([_with_hashes(store.read(name), repeated) for name in names])
    return Extracted(names, Tally(settler.rows, counted.settled, counted.outcomes))


def _with_hashes(chunk: pd.DataFrame, hashes: np.ndarray) -> pd.Series:
    """The chunk's ids whose hash is one of `hashes` (to name the repeated ones)."""
    ids = chunk[CUSTOMER_ID]
    return ids[np.isin(_id_hashes(ids), hashes)]


@task(name="extract", cache_policy=NO_CACHE)
@masked_errors
def extract_audience(
    store: Store,
    crm_url: SecretStr,
    audience: Audience,
    chunk_size: int,
    required_params: list[str] | None = None,
) -> Extracted:
    """Prefect task: the audience into the run's store, chunk by chunk (see `extract_to`), its
    progress shown as customers read (the total is not known until the end)."""
    with shown("extract", None, run_log(), verb="read") as bar:
        return extract_to(
            store,
            crm_url.get_secret_value(),
            audience,
            chunk_size,
            required_params=required_params,
            progress=bar,
        )
