"""A template body parameter the audience does not return is refused before the run, by name."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from connectors.crm import Audience
from tasks.campaign import Campaign

TEMPLATE = {"namespace": "acme_ns", "name": "order_update", "body_params": ["first_name"]}


def test_a_body_param_the_table_audience_does_not_map_is_refused_naming_it() -> None:
    audience = Audience(table="contacts", columns={"customer_id": "id", "phone_raw": "mobile"})
    message = (
        'template.body_params "first_name" is not returned by the audience: map a column as '
        "param_first_name"
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        Campaign(campaign_id="c1", template=TEMPLATE, audience=audience)


def test_mapped_params_and_query_audiences_pass_until_the_query_runs() -> None:
    columns = {"customer_id": "id", "phone_raw": "mobile", "param_first_name": "fname"}
    Campaign(campaign_id="c1", template=TEMPLATE, audience=Audience(table="t", columns=columns))
    query = Audience(query="SELECT id AS customer_id, mobile AS phone_raw FROM contacts")
    Campaign(campaign_id="c1", template=TEMPLATE, audience=query)
