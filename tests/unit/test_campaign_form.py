"""The Prefect form of a campaign: each constraint on its field, descriptions that render."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import build_error_obj, validate

from flows.broadcast import broadcast
from tasks.campaign import Campaign

DEMO = json.loads((Path(__file__).parents[2] / "deployments" / "demo-campaign.json").read_text())
SCHEMA = Campaign.model_json_schema()
FIELDS = SCHEMA["properties"]


def _descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            yield node["description"]
        for value in node.values():
            yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def _form_errors(campaign: dict[str, Any]) -> dict[str, Any]:
    """What Prefect's parameter validation (the form's) says per campaign field."""
    schema = parameter_schema(broadcast.fn).model_dump_for_openapi()
    errors = validate({"campaign": campaign}, schema, raise_on_error=False, preprocess=True)
    found = build_error_obj(errors)["errors"]
    return {e["property"]: e["errors"] for e in found[0]["errors"]} if found else {}


def test_optional_numbers_carry_their_bounds_on_the_field_itself() -> None:
    rate = FIELDS["rate_limit_per_s"]
    assert (rate["minimum"], rate["maximum"]) == (0.1, 1000)
    assert all("minimum" not in branch for branch in rate["anyOf"])
    assert (FIELDS["concurrency"]["minimum"], FIELDS["concurrency"]["maximum"]) == (1, 1024)
    assert FIELDS["messaging_limit"]["minimum"] == 0
    assert FIELDS["consent_max_age_days"]["exclusiveMinimum"] == 0
    assert (FIELDS["chunk_size"]["minimum"], FIELDS["lease_seconds"]["maximum"]) == (100, 600)


def test_a_negative_rate_is_marked_on_its_field_naming_the_bound() -> None:
    errors = _form_errors({**DEMO, "rate_limit_per_s": -1})
    assert errors == {"rate_limit_per_s": ["-1 is less than the minimum of 0.1"]}
    assert _form_errors({**DEMO, "rate_limit_per_s": None}) == {}


def test_send_window_times_and_paused_regions_are_checked_by_the_form() -> None:
    window = SCHEMA["$defs"]["SendWindow"]["properties"]
    assert re.fullmatch(window["start"]["pattern"], "09:00")
    assert not re.fullmatch(window["end"]["pattern"], "9:00")
    assert "XX" not in FIELDS["marketing_paused_regions"]["items"]["enum"]
    errors = _form_errors({**DEMO, "marketing_paused_regions": ["XX"]})
    assert list(errors) == ["marketing_paused_regions"]


def test_the_audience_query_is_a_plain_string_the_form_shows_as_a_text_box() -> None:
    # Prefect 3's UI renders a string with neither enum nor format as a resizable <textarea>.
    query = SCHEMA["$defs"]["Audience"]["properties"]["query"]
    assert {"type": "string"} in query["anyOf"]
    assert not {"format", "enum"} & {k for branch in query["anyOf"] for k in branch}


def test_column_names_in_descriptions_are_in_backticks_so_markdown_keeps_their_underscores() -> (
    None
):
    for description in _descriptions(SCHEMA):
        outside = re.sub(r"`[^`]*`", "", description)
        assert not re.search(r"\w_", outside), description
    assert (
        "`param_<name>`"
        in SCHEMA["$defs"]["TemplateSpec"]["properties"]["body_params"]["description"]
    )
