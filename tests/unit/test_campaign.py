"""Campaign parameters the UI form refuses before a run is created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

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
