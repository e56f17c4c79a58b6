"""The verify stage for Prefect: the v1 contact check, or the Cloud API's reachability."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.whatsapp import WhatsAppSettings
from tasks.verify.common import VerifyStats
from tasks.verify.contacts import verify
from tasks.verify.reachability import reach


@task(name="verify", cache_policy=NO_CACHE)
@masked_errors
def verify_chunks(
    frames: list[pd.DataFrame],
    whatsapp: WhatsAppSettings,
    warehouse_url: SecretStr,
    batch_size: int,
    suppress_days: int = 30,
) -> tuple[list[pd.DataFrame], VerifyStats]:
    """Prefect task: one pass over all chunks of the campaign, as the sender's API allows: the
    v1 contact check, or (Cloud) the numbers earlier sends showed undeliverable."""
    url = warehouse_url.get_secret_value()
    if whatsapp.api == "cloud":
        return reach(frames, warehouse_url=url, suppress_days=suppress_days)
    return verify(frames, whatsapp=whatsapp, warehouse_url=url, batch_size=batch_size)
