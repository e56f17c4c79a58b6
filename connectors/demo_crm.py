"""A reproducible demo CRM of messy, realistic customers, each with the outcome it must end with."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as Possible
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert

from connectors.whatsapp.onprem.sandbox import rules

DEMO_AUDIENCE_QUERY: Final = (
    "SELECT id AS customer_id, mobile AS phone_raw, cc AS country, optin AS opt_in_at, "
    "optout AS opt_out_at, fname AS param_first_name FROM crm_contacts"
)
DEMO_TEMPLATE: Final[dict[str, str | list[str]]] = {
    "namespace": "acme_ns",
    "name": "order_update",
    "language": "en",
    "body_params": ["first_name"],
}
DEMO_DEFAULT_REGION: Final = "US"
DEFAULT_NOW: Final = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INVALID_REASONS: Final = (
    "empty", "not_a_number", "too_short", "too_long", "invalid_country_code", "invalid_for_region",
)  # fmt: skip
# How valid numbers are written, with their weight in the mix ("invalid" marks the rest).
NUMBER_FORMATS: Final = (
    "national", "international", "e164", "idd_00", "digits_only", "dashes", "dots", "brackets",
    "padded", "extension", "fullwidth", "arabic_indic",
)  # fmt: skip
_FORMAT_WEIGHTS: Final = (25, 20, 15, 6, 5, 6, 5, 5, 4, 3, 2, 2)
# Outcome strings as in tasks/frame.py, copied because connectors may not import tasks.
_NO_CONSENT, _INVALID = "excluded_no_consent", "excluded_invalid_number"
_DUPLICATE, _NOT_ON_WA = "excluded_duplicate", "excluded_not_on_whatsapp"
_SENT, _SEND_FAILED = "sent", "send_failed"

demo_metadata = MetaData()
crm_contacts = Table(
    "crm_contacts",
    demo_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fname", String(100)),
    Column("lname", String(100)),
    Column("mobile", String(64)),
    Column("cc", String(2)),
    Column("optin", DateTime(timezone=True)),
    Column("optout", DateTime(timezone=True)),
    Column("email", String(200)),
    mysql_charset="utf8mb4",  # full-width and Arabic-Indic digits, accented names
)

# region: (weight in the mix, NSN prefixes of its mobile ranges, name pool)
_REGIONS: Final = {
    "US": (30, "201,212,312,415,617,713", "en"),
    "GB": (10, "7400,7700,7911,7824", "en"),
    "DE": (9, "151,160,170,176", "de"),
    "IN": (9, "81,98,70,99", "in"),
    "BR": (10, "119,219,319,619", "br"),  # the 9 after the area code: the ninth digit
    "MX": (6, "222,55,33,81", "es"),
    "FR": (6, "6,7", "fr"),
    "ES": (5, "6,7", "es"),
    "NG": (5, "802,803,806,813", "ng"),
    "ZA": (4, "71,72,82,83", "za"),
    "AE": (6, "50,52,55,56", "ae"),
}
_NAMES: Final = {
    "en": (
        "James,Olivia,Liam,Emma,Noah,Ava,Chloe,Ethan",
        "Smith,Brown,Taylor,Wilson,O'Neill,Evans",
    ),
    "de": ("Lukas,Anna,Jürgen,Lena,Felix,Sophie", "Müller,Schmidt,Schneider,Fischer,Weber,Becker"),
    "in": ("Aarav,Priya,Rohan,Ananya,Vikram,Isha", "Sharma,Patel,Iyer,Reddy,Gupta,Nair"),
    "br": ("João,Maria,Lucas,Ana,Gabriel,Beatriz", "Silva,Santos,Oliveira,Souza,Pereira,Costa"),
    "es": ("José,Sofía,Diego,Valentina,Javier,Lucía", "García,Hernández,López,Martínez,Pérez"),
    "fr": ("Camille,Léa,Hugo,Chloé,Louis,Manon", "Martin,Bernard,Dubois,Thomas,Robert,Petit"),
    "ng": ("Chinedu,Ngozi,Emeka,Aisha,Tunde,Funmi", "Okafor,Adeyemi,Balogun,Eze,Obi,Bello"),
    "za": ("Thabo,Lerato,Pieter,Naledi,Sipho,Anika", "Nkosi,van der Merwe,Dlamini,Botha,Naidoo"),
    "ae": ("Mohammed,Fatima,Omar,Aisha,Khalid,Mariam", "Al Mansouri,Al Nuaimi,Haddad,Khan,Saleh"),
}
_JUNK: Final = ("n/a", "N/A", "unknown", "none", "tbd", "no phone", "refused", "see notes")
_VANITY: Final = ("HELP", "CALL", "SHOP", "CARS", "FOOD", "BANK")
_BOGUS_CODES: Final = ("999", "990", "969", "888", "801")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?)\s*\d+\s*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-.()\[\]]")
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_MOBILE = PhoneNumberType.MOBILE
_MOBILE_TYPES = (_MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """One crm_contacts row and the outcome the campaign must give it, known by construction."""

    id: int
    fname: str | None
    lname: str | None
    mobile: str | None
    cc: str | None
    optin: datetime | None
    optout: datetime | None
    email: str | None
    expected_outcome: str
    expected_reason: str | None
    expected_e164: str | None  # set whenever the number is valid, whatever the outcome
    expected_duplicate_of: str | None
    expected_wa_id: str | None
    number_format: str  # one of NUMBER_FORMATS, or "invalid"

    def row(self) -> dict[str, object]:
        """The crm_contacts columns of this customer."""
        return {
            "id": self.id, "fname": self.fname, "lname": self.lname, "mobile": self.mobile,
            "cc": self.cc, "optin": self.optin, "optout": self.optout, "email": self.email,
        }  # fmt: skip


@dataclass(slots=True)
class _Draft:
    """A customer before ids are dealt out; `original` is the kept customer a duplicate repeats."""

    region: str
    fname: str | None
    lname: str | None
    email: str | None
    optin: datetime | None
    optout: datetime | None = None
    mobile: str | None = None
    cc: str | None = None
    number: PhoneNumber | None = None
    e164: str | None = None
    number_reason: str | None = None
    fmt: str = "invalid"
    original: _Draft | None = None
    id: int = 0


def _region(cc: str | None) -> str:
    upper = (cc or "").strip().upper()
    return upper if upper in phonenumbers.SUPPORTED_REGIONS else DEMO_DEFAULT_REGION


def _classify(mobile: str | None, cc: str | None) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, reason) under the documented number rules; reason "?" if unclear."""
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in (mobile or ""))
    text = _EXTENSION.sub("", text.strip())
    if any(c.isalpha() for c in text):
        return None, "not_a_number"
    text = _SEPARATORS.sub("", text)
    if not text:
        return None, "empty"
    region = _region(cc)
    if text.startswith("00"):
        # Where the region dials abroad with more than 00 (Brazil's carrier codes: 0055 …),
        # "00" may be read as that prefix or as "+": the outcome is not certain.
        idd = getattr(
            phonenumbers.PhoneMetadata.metadata_for_region(region), "international_prefix", ""
        )
        prefix = re.match(f"(?:{idd})", text) if idd else None
        if prefix is not None and prefix.group() != "00":
            return None, "?"
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as error:
        return None, {
            NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
            NumberParseException.NOT_A_NUMBER: "not_a_number",
            NumberParseException.TOO_SHORT_NSN: "too_short",
            NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
            NumberParseException.TOO_LONG: "too_long",
        }.get(error.error_type, "?")
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164), None
    return None, {  # lengths phonenumbers calls merely "invalid" or "local only" stay unclear
        Possible.IS_POSSIBLE: "invalid_for_region",
        Possible.TOO_SHORT: "too_short",
        Possible.TOO_LONG: "too_long",
        Possible.INVALID_COUNTRY_CODE: "invalid_country_code",
    }.get(phonenumbers.is_possible_number_with_reason(number), "?")


def _consent_reason(optin: datetime | None, optout: datetime | None) -> str | None:
    if optout is not None and (optin is None or optout >= optin):
        return "opted_out"
    return "no_opt_in" if optin is None else None


class _Generator:
    """Deals out distinct valid numbers and writes them the ways a real CRM holds them."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now = rng, now
        self.used: set[str] = set()
        self.regions, self.weights = list(_REGIONS), [w for w, _, _ in _REGIONS.values()]
        self.examples = {r: phonenumbers.example_number_for_type(r, _MOBILE) for r in _REGIONS}

    def customer(self, optin: datetime | None, region: str | None = None) -> _Draft:
        """A named customer of `region` (random when None), without a number yet."""
        region = region or self.rng.choices(self.regions, self.weights)[0]
        firsts, lasts = _NAMES[_REGIONS[region][2]]
        first, last = self.rng.choice(firsts.split(",")), self.rng.choice(lasts.split(","))
        handle = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        handle = re.sub(r"[^a-z.]", "", handle.lower()) + str(self.rng.randint(1, 999))
        email = f"{handle}@example.com" if self.rng.random() < 0.9 else None
        return _Draft(region, first, last, email, optin)

    def past(self, oldest_days: int = 1000, newest_days: int = 1) -> datetime:
        """A whole-second instant in the given window before now."""
        seconds = self.rng.randint(newest_days * 86400, oldest_days * 86400)
        return self.now - timedelta(seconds=seconds)

    def number(self, region: str, *, on_whatsapp: bool) -> PhoneNumber:
        """A fresh valid mobile number; its last digit decides the sandbox's answer."""
        example = self.examples[region]
        assert example is not None and example.country_code is not None
        length = len(str(example.national_number))
        for _ in range(1000):
            prefix = self.rng.choice(_REGIONS[region][1].split(","))
            middle = "".join(self.rng.choices("0123456789", k=length - len(prefix) - 1))
            last = self.rng.choice("123456789") if on_whatsapp else "0"
            number = PhoneNumber(example.country_code, int(prefix + middle + last))
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            if (
                e164 not in self.used
                and phonenumbers.number_type(number) in _MOBILE_TYPES
                and phonenumbers.is_valid_number_for_region(number, region)
                and rules.is_whatsapp_user(e164) == on_whatsapp
            ):
                self.used.add(e164)
                return number
        raise RuntimeError(f"no fresh valid mobile number left for {region}")

    def render(self, fmt: str, number: PhoneNumber, region: str) -> tuple[str, bool]:
        """The number written in `fmt`, and whether reading it needs the customer's cc."""
        intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        local = self.rng.random() < 0.5
        either = national if local else intl
        head, *groups = re.split(r"[ \-]", intl)
        trunk = getattr(
            phonenumbers.PhoneMetadata.metadata_for_region(region), "national_prefix", ""
        )
        written = {
            "national": national,
            "international": intl,
            "e164": phonenumbers.format_number(number, PhoneNumberFormat.E164),
            "idd_00": "00" + intl[1:],
            "digits_only": phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:],
            "dashes": either.replace(" ", "-"),
            "dots": ".".join((head, *groups)),
            "brackets": f"{head} (0){' '.join(groups)}"
            if local and trunk == "0"
            else f"{head} ({groups[0]}) {'-'.join(groups[1:])}",
            "padded": f"  {intl} ",
            "extension": either + self.rng.choice((" x", " ext. ")) + str(self.rng.randint(2, 999)),
            "fullwidth": intl.translate(_FULLWIDTH),
            "arabic_indic": either.translate(_ARABIC_INDIC),
        }[fmt]
        needs_cc = fmt in ("national", "digits_only") or (
            local and fmt in ("dashes", "extension", "arabic_indic")
        )
        return written, needs_cc

    def cc_for(self, region: str, needs_cc: bool, written: str) -> str | None:
        """The cc column: the region, often lower case; null or junk only where `+` decides."""
        roll = self.rng.random()
        if needs_cc:
            return (
                None if region == "US" and roll < 0.3 else region.lower() if roll > 0.85 else region
            )
        if roll < 0.8:
            return region if roll < 0.7 else region.lower()
        if roll < 0.95 or not written.lstrip().startswith("+"):
            return None
        return "UK" if region == "GB" else self.rng.choice(("XX", "ZZ", "EU"))

    def write(self, draft: _Draft, number: PhoneNumber, avoid: str = "") -> None:
        """Give `draft` the number in a random format (not `avoid`) that reads back to it."""
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        weights = [
            0 if f == avoid else w * 10 if f == "arabic_indic" else w
            for f, w in zip(NUMBER_FORMATS, _FORMAT_WEIGHTS, strict=True)
        ]
        if draft.region != "AE":  # Arabic-Indic digits only where customers type them
            weights[-1] = 0
        first = self.rng.choices(NUMBER_FORMATS, weights)[0]
        for fmt in (first, "international", "e164", "dashes"):
            if fmt != avoid:
                written, needs_cc = self.render(fmt, number, draft.region)
                cc = self.cc_for(draft.region, needs_cc, written)
                if _classify(written, cc) == (e164, None):
                    draft.mobile, draft.cc, draft.number, draft.e164, draft.fmt = (
                        written, cc, number, e164, fmt,
                    )  # fmt: skip
                    return
        raise RuntimeError(f"no way of writing {e164} reads back to it")

    def invalid(self, draft: _Draft, reason: str) -> None:
        """Give `draft` a number the rules reject for exactly `reason`."""
        rng = self.rng
        for attempt in range(200):
            if attempt >= 20:  # some regions never yield this reason by the edits below
                draft.region = rng.choices(self.regions, self.weights)[0]
            base = phonenumbers.format_number(
                self.number(draft.region, on_whatsapp=True), PhoneNumberFormat.INTERNATIONAL
            )
            digits = "".join(rng.choices("0123456789", k=rng.randint(9, 11)))
            draft.cc = draft.region if rng.random() < 0.8 else None
            draft.mobile = {
                "empty": rng.choice(("", None)),
                "not_a_number": rng.choice((rng.choice(_JUNK), base[:-4] + rng.choice(_VANITY))),
                "too_short": base[: -rng.randint(3, 7)].rstrip(" -"),
                "too_long": base + "".join(rng.choices("0123456789", k=rng.randint(3, 5))),
                "invalid_country_code": rng.choice(("+", "00"))
                + f"{rng.choice(_BOGUS_CODES)} {digits}",
                "invalid_for_region": re.sub(r"(?<= )\d", rng.choice("0123456789"), base, count=1),
            }[reason]
            if _classify(draft.mobile, draft.cc) == (None, reason):
                draft.number_reason = reason
                return
        raise RuntimeError(f"no number found that is invalid for reason {reason}")


def demo_customers(
    n: int = 3000, *, seed: int = 7, now: datetime | None = None
) -> list[DemoCustomer]:
    """`n` demo customers, ids 1..n, identical for a seed, each with the outcome it must get."""
    rng = random.Random(seed)
    now = (now or DEFAULT_NOW).replace(microsecond=0)  # MariaDB DATETIME keeps whole seconds
    gen = _Generator(rng, now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC))
    no_opt_in, opted_out, invalid, duplicates = (round(n * s) for s in (0.06, 0.04, 0.06, 0.10))
    kept: list[_Draft] = []
    for _ in range(n - no_opt_in - opted_out - invalid - duplicates):
        if rng.random() < 0.03:  # re-consented: an opt-out before the latest opt-in does not count
            optout = gen.past(900, 30)
            customer = gen.customer(optout + timedelta(seconds=rng.randint(3600, 20 * 86400)))
            customer.optout = optout
        else:
            customer = gen.customer(gen.past())
        if rng.random() < 0.012:
            customer.fname = rng.choice((None, "", "   "))
        gen.write(customer, gen.number(customer.region, on_whatsapp=rng.random() >= 0.1))
        kept.append(customer)

    others: list[_Draft] = []
    for i in range(invalid):
        customer = gen.customer(gen.past())
        gen.invalid(customer, INVALID_REASONS[i % len(INVALID_REASONS)])
        others.append(customer)

    for i in range(no_opt_in + opted_out):
        roll = rng.random()
        # Now and then a kept customer's number again, without consent: never a duplicate.
        original = rng.choice(kept) if kept and roll < 0.15 else None
        customer = gen.customer(None, original.region if original else None)
        if i >= no_opt_in:  # withdrawn: an opt-out at or after the opt-in, or with none at all
            customer.optin = gen.past(1000, 60) if rng.random() < 0.8 else None
            customer.optout = (
                gen.past()
                if customer.optin is None
                else customer.optin
                + timedelta(seconds=0 if rng.random() < 0.05 else rng.randint(1, 50 * 86400))
            )
        if original is not None and original.number is not None:
            gen.write(customer, original.number, avoid=original.fmt)
        elif roll < 0.25:
            gen.invalid(customer, rng.choice(INVALID_REASONS))
        else:
            gen.write(customer, gen.number(customer.region, on_whatsapp=rng.random() >= 0.1))
        others.append(customer)

    ties: dict[int, list[_Draft]] = {}
    for _ in range(duplicates if kept else 0):
        original = rng.choice(kept)
        assert original.optin is not None and original.number is not None
        tie = rng.random() < 0.25  # the same opt-in instant (a bulk import): the smaller id is kept
        older = timedelta(seconds=0 if tie else rng.randint(3600, 400 * 86400))
        customer = gen.customer(original.optin - older, original.region)
        if rng.random() < 0.5:
            customer.fname, customer.lname = original.fname, original.lname
        customer.original = original
        gen.write(customer, original.number, avoid=original.fmt)
        if tie:
            ties.setdefault(id(original), [original]).append(customer)
        others.append(customer)

    everyone = kept + others
    rng.shuffle(everyone)
    for position, customer in enumerate(everyone, start=1):
        customer.id = position
    for group in ties.values():
        for customer, smallest_first in zip(group, sorted(c.id for c in group), strict=True):
            customer.id = smallest_first
    everyone.sort(key=lambda c: c.id)
    _check_duplicates(everyone)
    return [_expect(c) for c in everyone]


def _check_duplicates(drafts: list[_Draft]) -> None:
    """Fail loudly if the dedupe rule, applied from scratch, keeps another than constructed."""
    kept: dict[str, _Draft] = {}
    eligible = [c for c in drafts if _consent_reason(c.optin, c.optout) is None and c.e164]
    for c in eligible:
        best = kept.setdefault(c.e164 or "", c)
        if (c.optin, -c.id) > (best.optin, -best.id):
            kept[c.e164 or ""] = c
    for c in eligible:
        if kept[c.e164 or ""] is not (c.original or c):
            raise RuntimeError(f"demo customer {c.id}: duplicate construction is inconsistent")


def _expect(c: _Draft) -> DemoCustomer:
    consent = _consent_reason(c.optin, c.optout)
    outcome, reason, duplicate_of, wa_id = _SENT, None, None, None
    if consent is not None:
        outcome, reason = _NO_CONSENT, consent
    elif c.e164 is None:
        outcome, reason = _INVALID, c.number_reason
    elif c.original is not None:
        outcome, reason, duplicate_of = _DUPLICATE, "duplicate", str(c.original.id)
    elif c.fname is None or not c.fname.strip():
        outcome, reason = _SEND_FAILED, "missing_parameter"
    else:
        status, wa_id = rules.contact_status(c.e164)
        if status != "valid":
            outcome, reason = _NOT_ON_WA, "not_on_whatsapp"
    columns = (c.id, c.fname, c.lname, c.mobile, c.cc, c.optin, c.optout, c.email)
    return DemoCustomer(*columns, outcome, reason, c.e164, duplicate_of, wa_id, c.fmt)


def expected_by_id(customers: Sequence[DemoCustomer]) -> dict[str, DemoCustomer]:
    """The customers keyed by str(id), the way the pipeline's customer_id reads."""
    return {str(c.id): c for c in customers}


def expected_funnel(customers: Sequence[DemoCustomer]) -> dict[str, int]:
    """How many customers must end in each outcome, largest first."""
    return dict(Counter(c.expected_outcome for c in customers).most_common())


def demo_crm_url(data_dir: Path) -> str:
    """The SQLAlchemy URL of the embedded demo CRM under `data_dir`."""
    return f"sqlite:///{data_dir}/crm.sqlite"


def seed_demo_crm(
    engine: Engine, customers: Sequence[DemoCustomer], *, replace: bool = True
) -> int:
    """Create crm_contacts (first dropping it when `replace`), insert the customers, count them."""
    if replace:
        crm_contacts.drop(engine, checkfirst=True)
    demo_metadata.create_all(engine, tables=[crm_contacts])
    rows = [c.row() for c in customers]
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):  # one executemany per batch
            conn.execute(insert(crm_contacts), rows[start : start + 1000])
    return len(rows)
