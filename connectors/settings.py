"""Where a run's data lives and how it reaches the API, read from the environment inside the run."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectors.masking import mask_url as mask_url  # re-exported: callers import it from here
from connectors.whatsapp.settings import Api, SenderSettings, api_from_env, senders_from_env

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / ".data"
# Prefect's block document name rule (prefect.types.names.BlockDocumentName, checked by
# tests/unit/test_secret_blocks.py), not imported: importing prefect costs the receiver a second.
BLOCK_NAME_PATTERN: Final = "^[a-z0-9-]+$"
_BLOCK_NAME = re.compile(BLOCK_NAME_PATTERN)


class Connections(BaseModel):
    """CRM and warehouse URLs (secret: they may hold passwords), the WhatsApp API flavour and its
    senders (none: the embedded sandbox of that flavour is used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm_url: SecretStr
    warehouse_url: SecretStr
    api: Api = "onprem"
    senders: tuple[SenderSettings, ...]
    data_dir: Path
    partition_dir: Path | None = None  # WA_PARTITION_DIR; None: `data_dir / "partitions"`

    @model_validator(mode="after")
    def _senders_speak_the_api(self) -> Connections:
        other = [s.sender_id for s in self.senders if s.api != self.api]
        if other:
            raise ValueError(f"WHATSAPP_API={self.api}, but senders {other} speak another API")
        return self

    @property
    def whatsapp(self) -> SenderSettings | None:
        """The first sender (callers use only it today), or None when no API is configured."""
        return self.senders[0] if self.senders else None

    @property
    def partitions_root(self) -> Path:
        """Where runs keep their partitions between stages (`WA_PARTITION_DIR`)."""
        return self.partition_dir or self.data_dir / "partitions"

    @property
    def crm_is_default(self) -> bool:
        """True when the CRM is the embedded demo database."""
        return self.crm_url.get_secret_value() == default_crm_url(self.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Connections:
        """Read CRM_DATABASE_URL, WAREHOUSE_DATABASE_URL, WHATSAPP_* and WA_PARTITION_DIR; unset
        means embedded.

        `WHATSAPP_API` is read even without `WHATSAPP_API_URL` (which sandbox to embed); with it,
        the senders: one for v1, one per `WHATSAPP_PHONE_NUMBER_ID` for Cloud."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("WA_DATA_DIR") or DEFAULT_DATA_DIR)
        api = api_from_env(env)
        senders = senders_from_env(env) if env.get("WHATSAPP_API_URL") else ()
        return cls(
            crm_url=SecretStr(env.get("CRM_DATABASE_URL") or default_crm_url(data_dir)),
            warehouse_url=SecretStr(
                env.get("WAREHOUSE_DATABASE_URL") or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
            ),
            api=api,
            senders=senders,
            data_dir=data_dir,
            partition_dir=Path(env["WA_PARTITION_DIR"]) if env.get("WA_PARTITION_DIR") else None,
        )


def default_crm_url(data_dir: Path) -> str:
    """The embedded demo CRM's URL."""
    return f"sqlite:///{data_dir / 'crm.sqlite'}"


class _Hidden:
    """Stands in for a refused value, so that no validation error can quote it."""

    def __repr__(self) -> str:
        return "'<not shown>'"


_HIDDEN: Final = _Hidden()


def _hide_non_names(value: object) -> object:
    """Anything but None or a block name becomes `_HIDDEN` before a validator can fail on it."""
    if value is None or (isinstance(value, str) and _BLOCK_NAME.fullmatch(value)):
        return value
    return _HIDDEN


def _refuse_hidden(value: object, info: ValidationInfo) -> str | None:
    """The block name, or an error naming the field (pydantic and Prefect show only `_HIDDEN`)."""
    if isinstance(value, str) or value is None:
        return value
    raise PydanticCustomError(
        "secret_block_name",
        "{field} takes the name of a Prefect Secret block (lowercase letters, digits and "
        "dashes), never a secret or a URL; put the value in a Secret block and give its name "
        "(the value given is not shown)",
        {"field": info.field_name or "secrets"},
    )


# Before-validators run first: the value is swapped out before the plain validator refuses it,
# so the error's `input` is the stand-in, in `str(error)`, `.errors()` and Prefect's run state.
BlockName = Annotated[
    str | None,
    PlainValidator(_refuse_hidden),
    BeforeValidator(_hide_non_names),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": BLOCK_NAME_PATTERN}, {"type": "null"}]}
    ),
]


class SecretBlocks(BaseModel):
    """Names (never values) of Prefect Secret blocks; a name left unset falls back to the env."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    crm_database_url: BlockName = None
    warehouse_database_url: BlockName = None
    whatsapp_password: BlockName = None
    whatsapp_api_key: BlockName = None
    whatsapp_token: BlockName = None

    @model_validator(mode="before")
    @classmethod
    def _hide_unknown(cls, data: Any) -> Any:
        """Values of misspelt keys, or a value in place of the object, are hidden before refusal."""
        if isinstance(data, dict):
            return {k: v if k in cls.model_fields else _HIDDEN for k, v in data.items()}
        return data if isinstance(data, SecretBlocks) else _HIDDEN

    def env_names(self) -> dict[str, str]:
        """Environment variable -> block name, for the blocks that are set."""
        names = {
            "CRM_DATABASE_URL": self.crm_database_url,
            "WAREHOUSE_DATABASE_URL": self.warehouse_database_url,
            "WHATSAPP_PASSWORD": self.whatsapp_password,
            "WHATSAPP_API_KEY": self.whatsapp_api_key,
            "WHATSAPP_TOKEN": self.whatsapp_token,
        }
        return {var: block for var, block in names.items() if block}
