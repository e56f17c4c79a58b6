"""Campaign parameters the UI form refuses before a run is created."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.crm import Audience
from connectors.whatsapp.settings import WhatsAppSettings
from tasks.campaign import Campaign

DEMO = json.loads((Path(__file__).parents[2] / "deployments" / "demo-campaign.json").read_text())


def _campaign(**overrides: Any) -> Campaign:
    return Campaign.model_validate({**DEMO, **overrides})


@pytest.mark.parametrize("rate", [0, 0.05, 0.0999, -1, 1001])
def test_a_rate_outside_a_tenth_to_a_thousand_per_second_is_refused_naming_it(rate: float) -> None:
    with pytest.raises(ValidationError, match="rate_limit_per_s"):
        _campaign(rate_limit_per_s=rate)


def test_the_slowest_allowed_rate_and_the_lease_bounds() -> None:
    assert _campaign(rate_limit_per_s=0.1).rate_limit_per_s == 0.1
    assert _campaign().lease_seconds == 30
    with pytest.raises(ValidationError, match="lease_seconds"):
        _campaign(lease_seconds=1)


def test_api_settings_never_show_credentials_in_their_url() -> None:
    settings = WhatsAppSettings(base_url="https://etl:pw-s3cret@waba.example.com", token="t0ken")  # type: ignore[arg-type]
    for shown in (repr(settings), str(settings), settings.shown_url):
        assert "pw-s3cret" not in shown and "t0ken" not in shown
    assert "etl:***@waba.example.com" in repr(settings)


NAMED = {
    "namespace": "acme_ns",
    "name": "order_update",
    "body_params": ["first_name"],
}


def test_a_body_param_the_table_audience_does_not_map_is_refused_naming_it() -> None:
    audience = Audience(table="contacts", columns={"customer_id": "id", "phone_raw": "mobile"})
    message = (
        'template parameter "first_name" is not returned by the audience: map a column as '
        "param_first_name"
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        Campaign(campaign_id="c1", template=NAMED, audience=audience)


def test_mapped_params_and_query_audiences_pass_until_the_query_runs() -> None:
    columns = {"customer_id": "id", "phone_raw": "mobile", "param_first_name": "fname"}
    Campaign(
        campaign_id="c1",
        template=NAMED,
        audience=Audience(table="t", columns=columns),
    )
    query = Audience(query="SELECT id AS customer_id, mobile AS phone_raw FROM contacts")
    Campaign(campaign_id="c1", template=NAMED, audience=query)
