"""Extract: the campaign's audience out of the CRM, as frames of chunk size."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.crm import Audience, crm_engine, read_audience
from tasks.frame import with_stage_columns


def extract(crm_url: str, audience: Audience, chunk_size: int) -> list[pd.DataFrame]:
    """Read the whole audience in chunks, each with the later stages' columns added."""
    engine = crm_engine(crm_url)
    try:
        return [with_stage_columns(chunk) for chunk in read_audience(engine, audience, chunk_size)]
    finally:
        engine.dispose()


@task(name="extract", cache_policy=NO_CACHE)
def extract_audience(crm_url: SecretStr, audience: Audience, chunk_size: int) -> list[pd.DataFrame]:
    """Prefect task: the audience as a list of chunk frames."""
    return extract(crm_url.get_secret_value(), audience, chunk_size)
