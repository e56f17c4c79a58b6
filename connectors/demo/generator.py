"""How the demo's customers are written: regions, names, number formats, junk, and the drafts."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as Possible

from connectors.vocabulary import NUMBER_REASONS, Reason
from connectors.whatsapp.onprem.sandbox import rules

DEMO_DEFAULT_REGION: Final = "US"
DEFAULT_NOW: Final = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Every reason a number can be invalid for whatever the campaign (not `not_mobile`).
INVALID_REASONS: Final = tuple(r for r in NUMBER_REASONS if r != Reason.NOT_MOBILE)
# How valid numbers are written, with their weight in the mix ("invalid" marks the rest).
NUMBER_FORMATS: Final = (
    "national", "international", "e164", "idd_00", "digits_only", "dashes", "dots", "brackets",
    "padded", "extension", "fullwidth", "arabic_indic",
)  # fmt: skip
_FORMAT_WEIGHTS: Final = (25, 20, 15, 6, 5, 6, 5, 5, 4, 3, 2, 2)

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


@dataclass(slots=True)
class Draft:
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
    original: Draft | None = None
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


def consent_reason(optin: datetime | None, optout: datetime | None) -> str | None:
    """Why the consent stage excludes a customer with these dates, or None."""
    if optout is not None and (optin is None or optout >= optin):
        return Reason.OPTED_OUT
    return Reason.NO_OPT_IN if optin is None else None


class Generator:
    """Deals out distinct valid numbers and writes them the ways a real CRM holds them."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now = rng, now
        self.used: set[str] = set()
        self.regions, self.weights = list(_REGIONS), [w for w, _, _ in _REGIONS.values()]
        self.examples = {r: phonenumbers.example_number_for_type(r, _MOBILE) for r in _REGIONS}

    def customer(self, optin: datetime | None, region: str | None = None) -> Draft:
        """A named customer of `region` (random when None), without a number yet."""
        region = region or self.rng.choices(self.regions, self.weights)[0]
        firsts, lasts = _NAMES[_REGIONS[region][2]]
        first, last = self.rng.choice(firsts.split(",")), self.rng.choice(lasts.split(","))
        handle = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        handle = re.sub(r"[^a-z.]", "", handle.lower()) + str(self.rng.randint(1, 999))
        email = f"{handle}@example.com" if self.rng.random() < 0.9 else None
        return Draft(region, first, last, email, optin)

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

    def write(self, draft: Draft, number: PhoneNumber, avoid: str = "") -> None:
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

    def invalid(self, draft: Draft, reason: str) -> None:
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
