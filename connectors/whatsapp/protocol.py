"""What the stages need from a sender, whatever API flavour is behind it.

A `Sender` is one sender number's stream: it sends one template message and answers its message id
or raises an error of `connectors.whatsapp.errors`. A `ContactChecker` can also ask which numbers
are on WhatsApp (the v1 API's `/v1/contacts`; Cloud has no such call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from connectors.vocabulary import ContactStatus


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template, addressed as the API wants it."""

    namespace: str
    name: str
    language: str


@dataclass(frozen=True, slots=True)
class ContactCheck:
    """The API's answer for one input number."""

    input: str
    status: ContactStatus
    wa_id: str | None = None


@runtime_checkable
class Sender(Protocol):
    """One sender's connection to the API: `async with open_sender(settings) as sender:`."""

    @property
    def sender_id(self) -> str:
        """Which sender this is, stable across runs (recorded in the ledger); never a secret."""
        ...

    async def send_template(
        self, to: str, template: Template, params: Sequence[str], *, number: str | None = None
    ) -> str:
        """Send one template message to `to` and return its message id; `number` is the E.164
        number behind `to`, for a flavour that may need to look the recipient up again."""
        ...

    async def health(self) -> Mapping[str, Any] | None:
        """Prove the API is reachable and takes the credentials: its answer, or None when it
        has no health endpoint (credentials then unproven until the first send)."""
        ...

    async def aclose(self) -> None:
        """Close the connections the sender opened itself."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class ContactChecker(Protocol):
    """A sender that can ask which numbers are on WhatsApp (v1 only)."""

    async def check_contacts(
        self,
        numbers: Sequence[str],
        *,
        batch_size: int = 1000,
        force_check: bool = False,
        in_flight: int = 2,
    ) -> dict[str, ContactCheck]:
        """Check numbers in as few calls as `batch_size` allows; answers keyed by input."""
        ...
