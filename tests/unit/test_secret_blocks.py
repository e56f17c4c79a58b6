"""`SecretBlocks` takes Prefect block names only, and never shows a refused value back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prefect import flow
from prefect.exceptions import ParameterTypeError
from prefect.types.names import BlockDocumentName
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate
from pydantic import TypeAdapter, ValidationError

from connectors.settings import SecretBlocks

REFUSED = ["postgresql://u:hunter2@db/x", "hunter2@x", "a/b", "A B", "", "Wa-Password", "x:y"]
ACCEPTED = ["wa-password", "warehouse-url-2", "0", "-"]
FIELDS = sorted(SecretBlocks.model_fields)


@flow
def takes_blocks(secrets: SecretBlocks | None = None) -> None:
    """A flow with the broadcast flow's `secrets` parameter, to see Prefect's own validation."""


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("field", FIELDS)
def test_a_value_that_is_not_a_block_name_is_refused_without_echo(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SecretBlocks.model_validate({field: value})
    error = caught.value
    shown = [str(error), repr(error), error.json(), repr(error.errors())]
    assert field in str(error)
    if value:
        assert not any(value in text for text in shown)
    assert "hunter2" not in "".join(shown)


@pytest.mark.parametrize(
    "given", [{"whatsapp_pasword": "hunter2"}, "postgresql://u:hunter2@db/x", ["hunter2"]]
)
def test_a_misspelt_key_or_a_bare_value_is_refused_without_echo(given: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        SecretBlocks.model_validate(given)
    error = caught.value
    assert "hunter2" not in str(error) + repr(error.errors()) + error.json()


@pytest.mark.parametrize("value", ACCEPTED)
def test_block_names_are_accepted(value: str) -> None:
    blocks = SecretBlocks(whatsapp_password=value, warehouse_database_url=value)
    assert blocks.env_names() == {"WHATSAPP_PASSWORD": value, "WAREHOUSE_DATABASE_URL": value}


@pytest.mark.parametrize("value", REFUSED + ACCEPTED)
def test_the_rule_is_prefects_block_document_name_rule(value: str) -> None:
    prefect_accepts = True
    try:
        TypeAdapter(BlockDocumentName).validate_python(value)
    except ValidationError:
        prefect_accepts = False
    try:
        SecretBlocks(whatsapp_token=value)
    except ValidationError:
        assert not prefect_accepts
    else:
        assert prefect_accepts


def test_prefects_flow_run_error_names_the_field_but_not_the_value() -> None:
    parameters = {"secrets": {"whatsapp_password": "postgresql://u:hunter2@db/x"}}
    with pytest.raises(ParameterTypeError) as caught:
        takes_blocks.validate_parameters(parameters)
    message = str(caught.value)
    assert "secrets.whatsapp_password" in message
    assert "hunter2" not in message and "postgresql" not in message


def test_the_parameter_schema_refuses_a_value_before_a_run_is_created() -> None:
    schema: dict[str, Any] = parameter_schema(takes_blocks).model_dump_for_openapi()
    good = {"secrets": {"whatsapp_password": "wa-password"}}
    bad = {"secrets": {"whatsapp_password": "hunter2@x"}}
    assert validate(good, schema) == []
    assert validate(bad, schema) != []
    assert "^[a-z0-9-]+$" in json.dumps(schema)
