"""Properties of normalise and dedupe: formatting never changes a number, no customer is lost."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from connectors.demo import INVALID_REASONS
from connectors.vocabulary import (
    COUNTRY,
    CUSTOMER_ID,
    DUPLICATE_OF,
    OPT_IN_AT,
    OUTCOME,
    PHONE_E164,
    PHONE_RAW,
    REASON,
    Outcome,
    Reason,
)
from tasks.frame import with_stage_columns
from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise

# Modest counts keep the file to a few seconds; no example database in the working tree.
FEW = settings(max_examples=50, deadline=None, database=None)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
# Where `00` is the international prefix, `00<country code>` cannot mean anything else.
PLAIN_00 = [r for r in REGIONS if PhoneMetadata.metadata_for_region(r).international_prefix == "00"]
VALID = sorted(
    {
        phonenumbers.format_number(number, PhoneNumberFormat.E164)
        for region in REGIONS
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE)
        if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    }
)
SEPARATORS = ["", "", "", " ", "-", ".", "/", "\u00a0", "\u2013", "\u2212", "\u200b", "\u200e"]
PADDING = ["", " ", "  ", "\t", "\u3000", "\n"]
REASONS = set(INVALID_REASONS)  # mobile_only is off here


@st.composite
def written(draw: st.DrawFn, e164: str) -> tuple[str, str | None]:
    """One way a person could have typed this number, with a country that does not contradict it."""
    digits = e164[1:]
    wide = draw(st.lists(st.booleans(), min_size=len(digits), max_size=len(digits)))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(digits), max_size=len(digits)))
    chars = [chr(0xFF10 + int(d)) if w else d for d, w in zip(digits, wide, strict=True)]
    body = [c + s for c, s in zip(chars, seps, strict=True)]
    start = draw(st.integers(0, len(body) - 1))
    end = draw(st.integers(start, len(body) - 1))
    if draw(st.booleans()):
        body[start] = "(" + body[start]
        body[end] += ")"
    prefix = draw(st.sampled_from(["+", "+ ", "\uff0b", "00", "00 ", "\uff10\uff10"]))
    regions = PLAIN_00 if prefix.strip() in ("00", "\uff10\uff10") else REGIONS
    country = draw(st.none() | st.sampled_from(regions).map(str.lower) | st.sampled_from(regions))
    pad = st.sampled_from(PADDING)
    return draw(pad) + prefix + "".join(body) + draw(pad), country


@FEW
@given(st.data())
def test_any_formatting_of_a_valid_number_gives_the_same_e164(data: st.DataObject) -> None:
    numbers = data.draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=8))
    typed = [data.draw(written(number)) for number in numbers]
    frame = with_stage_columns(
        pd.DataFrame(
            {
                CUSTOMER_ID: [str(i) for i in range(len(typed))],
                PHONE_RAW: pd.Series([raw for raw, _ in typed], dtype="str"),
                COUNTRY: pd.Series([country for _, country in typed], dtype="str"),
            }
        )
    )
    out = normalise(frame, default_region="DE")
    assert out[PHONE_E164].tolist() == numbers, list(zip(typed, out[REASON], strict=True))


junk = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
moments = st.none() | st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2026, 1, 1)
).map(lambda moment: moment.replace(tzinfo=dt.UTC))


@st.composite
def campaign(draw: st.DrawFn) -> list[pd.DataFrame]:
    """Chunks of customers sharing a few numbers, some junk, some excluded by an earlier stage."""
    shared = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))
    size = draw(st.integers(1, 25))
    ids = draw(
        st.lists(
            st.from_regex(r"[0-9a-f]{1,4}", fullmatch=True),
            min_size=size,
            max_size=size,
            unique=True,
        )
    )
    raw = draw(st.lists(st.sampled_from(shared) | junk | st.none(), min_size=size, max_size=size))
    frame = with_stage_columns(
        pd.DataFrame(
            {
                CUSTOMER_ID: pd.Series(ids, dtype="str"),
                PHONE_RAW: pd.Series(raw, dtype="str"),
                COUNTRY: pd.Series(
                    draw(
                        st.lists(
                            st.sampled_from(["de", "US", None, "??"]), min_size=size, max_size=size
                        )
                    ),
                    dtype="str",
                ),
                OPT_IN_AT: pd.to_datetime(
                    draw(st.lists(moments, min_size=size, max_size=size)), utc=True
                ),
            }
        )
    )
    excluded = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    frame.loc[excluded, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
    frame.loc[excluded, REASON] = Reason.NO_OPT_IN
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
    bounds = [0, *cuts, size]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]


# Building the frames touches global random state inside pandas, which Hypothesis warns about.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@FEW
@given(campaign())
def test_normalise_then_dedupe_never_loses_or_invents_a_customer(
    chunks: list[pd.DataFrame],
) -> None:
    outs = dedupe([normalise(chunk, default_region="GB") for chunk in chunks])
    assert [len(out) for out in outs] == [len(chunk) for chunk in chunks]
    before, after = pd.concat(chunks), pd.concat(outs)
    assert after[CUSTOMER_ID].tolist() == before[CUSTOMER_ID].tolist()
    assert after.index.tolist() == before.index.tolist()

    earlier = before[OUTCOME].notna().to_numpy()
    pd.testing.assert_frame_equal(after[earlier], before[earlier])
    ours = after[~earlier]
    running = ours[OUTCOME].isna()
    assert ours.loc[running, PHONE_E164].notna().all()
    assert ours.loc[running, PHONE_E164].is_unique
    invalid = ours[ours[OUTCOME] == Outcome.EXCLUDED_INVALID_NUMBER]
    assert invalid[PHONE_E164].isna().all() and invalid[REASON].isin(REASONS).all()
    duplicate = ours[ours[OUTCOME] == Outcome.EXCLUDED_DUPLICATE]
    assert (duplicate[REASON] == Reason.DUPLICATE).all()
    assert len(invalid) + len(duplicate) + running.sum() == len(ours)
    keepers = ours[running].set_index(CUSTOMER_ID)[PHONE_E164]
    assert duplicate[DUPLICATE_OF].isin(keepers.index).all()
    assert (
        keepers.loc[duplicate[DUPLICATE_OF]].to_numpy() == duplicate[PHONE_E164].to_numpy()
    ).all()
