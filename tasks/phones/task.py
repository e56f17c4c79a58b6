"""The phones stage for Prefect: normalise one chunk, dedupe all chunks of a campaign."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise


@task(name="normalise", cache_policy=NO_CACHE)
def normalise_chunk(
    frame: pd.DataFrame, default_region: str, mobile_only: bool = False
) -> pd.DataFrame:
    """Prefect task: normalise the phone numbers of one chunk."""
    return normalise(frame, default_region=default_region, mobile_only=mobile_only)


@task(name="dedupe", cache_policy=NO_CACHE)
def dedupe_chunks(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Prefect task: dedupe the numbers of all chunks of one campaign."""
    return dedupe(frames)
