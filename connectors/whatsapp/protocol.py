"""What the stages need from a sender, whatever API flavour is behind it.

A `Sender` is one sender number's stream: it sends one template message and answers a
`SendReceipt` or raises an error of `connectors.whatsapp.errors`. A `ContactChecker` can also ask
which numbers are on WhatsApp (the v1 API's `/v1/contacts`; Cloud has no such call). A
`TemplateDirectory` can look a template up and read the sender number's facts (Cloud only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeAlias, runtime_checkable

from connectors.vocabulary import ContactStatus
from connectors.whatsapp.components import NO_EXTRAS, Extras
from connectors.whatsapp.shape import NO_SHAPE, TemplateShape

ParameterFormat: TypeAlias = Literal["NAMED", "POSITIONAL"]


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template, addressed as the API wants it.

    `namespace` is the v1 API's (its body needs one); Cloud templates have none. The Cloud facts
    (from `TemplateDirectory.lookup_template`) decide the Cloud route and body: `category`
    (MARKETING, UTILITY, AUTHENTICATION), `parameter_format` and, for NAMED templates, the
    template's `parameter_names` in the order the body parameters are given and its TEXT
    header's `header_names`.
    """

    namespace: str | None
    name: str
    language: str
    category: str | None = None
    parameter_format: ParameterFormat | None = None
    parameter_names: tuple[str, ...] = ()
    header_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What the API answered to one accepted send.

    `message_status` (Cloud): `accepted`, `held_for_quality_assessment` (may be released or
    dropped later) or `paused`; `user_id` is the Cloud business-scoped user id (BSUID) and `wa_id`
    the Cloud `contacts[].wa_id`, either may be absent. v1 answers only the message id.
    """

    message_id: str
    message_status: str | None = None
    user_id: str | None = None
    wa_id: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """One template of the business account as the API describes it (Cloud).

    `status`: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...; only APPROVED ones can be sent.
    `parameter_names`: a NAMED template's body parameter names in the order they first appear;
    `parameter_count`: how many body parameters a send must carry (both formats); `shape`: its
    header and buttons.
    """

    name: str
    language: str
    status: str
    category: str | None
    parameter_format: ParameterFormat
    parameter_names: tuple[str, ...] = ()
    parameter_count: int = 0
    shape: TemplateShape = NO_SHAPE

    @property
    def approved(self) -> bool:
        """True when the template can be sent."""
        return self.status == "APPROVED"

    def template(self) -> Template:
        """The address a Cloud sender sends this template with (no namespace)."""
        return Template(
            namespace=None,
            name=self.name,
            language=self.language,
            category=self.category,
            parameter_format=self.parameter_format,
            parameter_names=self.parameter_names,
            header_names=self.shape.header_params if self.parameter_format == "NAMED" else (),
        )


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """The sender number's facts (Cloud), for the run's log line and its budget.

    `quality_rating`: GREEN, YELLOW, RED or UNKNOWN. `throughput_level`: STANDARD (80 messages/s),
    HIGH (up to 1,000/s) or NOT_APPLICABLE. `messaging_limit`: unique recipients of template
    messages per moving 24 h, shared by the business portfolio's numbers: 250, 2000, 10000,
    100000 from `TIER_250`, `TIER_2K`, `TIER_10K`, `TIER_100K` (also `TIER_50`, `TIER_1K`, or a
    number as answered); None when unlimited (`TIER_UNLIMITED`, -1) and also when the API did
    not say (absent, `TIER_NOT_SET`, unreadable): `limit_known` tells the two apart, and
    `messaging_limit_tier` keeps the answer as given.
    """

    phone_number_id: str
    display_phone_number: str | None = None
    quality_rating: str | None = None
    throughput_level: str | None = None
    messaging_limit: int | None = None
    limit_known: bool = False
    messaging_limit_tier: str | None = None


@runtime_checkable
class Sender(Protocol):
    """One sender's connection to the API: `async with open_sender(settings) as sender:`."""

    @property
    def sender_id(self) -> str:
        """Which sender this is, stable across runs (recorded in the ledger); never a secret."""
        ...

    async def send_template(
        self,
        to: str,
        template: Template,
        params: Sequence[str],
        *,
        extras: Extras = NO_EXTRAS,
        number: str | None = None,
        callback: str | None = None,
    ) -> SendReceipt:
        """Send one template message to `to` and return what the API answered.

        `params` fill the body, `extras` the header and buttons. `number` is the E.164 number
        behind `to`, for a flavour that may need to look the recipient up again; `callback`
        travels with the message and comes back in its status webhooks (Cloud
        `biz_opaque_callback_data`; v1 ignores it)."""
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


@runtime_checkable
class TemplateDirectory(Protocol):
    """A sender that can describe its templates and its number (Cloud only)."""

    async def lookup_template(self, name: str, language: str) -> TemplateInfo:
        """The business account's template of this name and language, whatever its status;
        raises a StopRunError-kind error naming both when the account has no such template."""
        ...

    async def lookup_translations(self, name: str) -> list[TemplateInfo]:
        """Every language of the business account's template of this name, whatever their
        status (none: an empty list)."""
        ...

    async def phone_facts(self) -> PhoneFacts:
        """The sender number's display number, quality, throughput and messaging limit."""
        ...


@dataclass(frozen=True, slots=True)
class ContactCheck:
    """The API's answer for one input number."""

    input: str
    status: ContactStatus
    wa_id: str | None = None
