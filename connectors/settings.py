"""Where a run's data lives and how it reaches the API, read from the environment inside the run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.whatsapp.settings import WhatsAppSettings

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / ".data"


def mask_url(url: str) -> str:
    """A database URL with its password hidden, for messages and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class Connections(BaseModel):
    """CRM and warehouse URLs (secret: they may hold passwords) and the WhatsApp API settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm_url: SecretStr
    warehouse_url: SecretStr
    whatsapp: WhatsAppSettings | None
    data_dir: Path

    @property
    def crm_is_default(self) -> bool:
        """True when the CRM is the embedded demo database."""
        return self.crm_url.get_secret_value() == default_crm_url(self.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Connections:
        """Read CRM_DATABASE_URL, WAREHOUSE_DATABASE_URL and WHATSAPP_*; unset means embedded."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("WA_DATA_DIR") or DEFAULT_DATA_DIR)
        whatsapp = WhatsAppSettings.from_env(env) if env.get("WHATSAPP_API_URL") else None
        return cls(
            crm_url=SecretStr(env.get("CRM_DATABASE_URL") or default_crm_url(data_dir)),
            warehouse_url=SecretStr(
                env.get("WAREHOUSE_DATABASE_URL") or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
            ),
            whatsapp=whatsapp,
            data_dir=data_dir,
        )


def default_crm_url(data_dir: Path) -> str:
    """The embedded demo CRM's URL."""
    return f"sqlite:///{data_dir / 'crm.sqlite'}"


class SecretBlocks(BaseModel):
    """Names (never values) of Prefect Secret blocks; a name left unset falls back to the env."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm_database_url: str | None = None
    warehouse_database_url: str | None = None
    whatsapp_password: str | None = None
    whatsapp_api_key: str | None = None
    whatsapp_token: str | None = None

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
