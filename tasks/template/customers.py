"""Per-customer checks of the template's values before anything is checked or sent: the language
each customer gets, and their header and button parameters as the API would take them.

A customer without one they need is `send_failed` / `missing_parameter`, one the API would refuse
(a media link that is not `https://`, a URL suffix with characters a URL cannot carry, a coupon
over 15 characters) `send_failed` / `invalid_parameter`, one whose language the template lacks
without a fallback `excluded_policy` / `no_template_language`; nobody else is held up.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from connectors.vocabulary import (
    LANGUAGE,
    PARAM_PREFIX,
    TEMPLATE_LANGUAGE,
    Outcome,
    Reason,
)
from connectors.whatsapp.shape import (
    BUTTON_VALUE_PROBLEM,
    filename_problem,
    header_text_problem,
    https_link_problem,
)
from tasks.frame import in_running
from tasks.plan import clean_param, require_params
from tasks.rules.settle import settle
from tasks.template.fill import Fill
from tasks.template.languages import choose_languages

Problem = Callable[[str], str | None]


def choose_template_languages(frame: pd.DataFrame, fill: Fill) -> pd.DataFrame:
    """Give each customer still in the running the template language they get (missing: the
    template has none of theirs and the campaign allows no fallback)."""
    out = frame.copy()
    running = in_running(out)
    given = out[LANGUAGE] if LANGUAGE in out.columns else pd.Series(pd.NA, index=out.index)
    chosen = choose_languages(
        given.loc[running],
        fill.templates.keys(),
        fill.language,
        fallback=fill.fallback,
    )
    out[TEMPLATE_LANGUAGE] = pd.Series(pd.NA, index=out.index, dtype="str")
    out.loc[running, TEMPLATE_LANGUAGE] = chosen
    return out


def _column(frame: pd.DataFrame, param: str) -> pd.Series:
    name = f"{PARAM_PREFIX}{param}"
    return frame[name] if name in frame.columns else pd.Series(pd.NA, index=frame.index)


def _judge(
    values: pd.Series, problem: Problem, *, required: bool = True
) -> tuple[pd.Series, pd.Series]:
    """(missing, invalid) masks of one parameter's values, judged once per distinct value."""
    missing = values.isna() | (values == "")
    distinct = values.loc[~missing].unique()
    bad = {v for v in distinct if problem(v) is not None}
    invalid = values.isin(bad) & ~missing
    return (missing if required else missing & False), invalid


def check_fills(frame: pd.DataFrame, fill: Fill) -> pd.DataFrame:
    """Check the customers still in the running for their body, header, buttons and language;
    the values are written back cleaned (as they will be sent)."""
    out = frame.copy()
    if TEMPLATE_LANGUAGE in out.columns:
        lost = in_running(out) & out[TEMPLATE_LANGUAGE].isna()
        settle(out, lost, Outcome.EXCLUDED_POLICY, Reason.NO_TEMPLATE_LANGUAGE)
    out = require_params(out, fill.body_columns)
    running = in_running(out)
    missing = pd.Series(False, index=out.index)
    invalid = pd.Series(False, index=out.index)
    checks: list[tuple[str, Callable[[pd.Series], pd.Series], Problem, bool]] = []
    header = fill.header
    if header is not None:
        if header.text_param:
            checks.append((header.text_param, clean_param, header_text_problem, True))
        if header.link_param:
            checks.append((header.link_param, _stripped, https_link_problem, True))
        if header.filename_param:
            checks.append((header.filename_param, clean_param, filename_problem, False))
    for button in fill.buttons:
        if button.param:
            checks.append((button.param, _stripped, BUTTON_VALUE_PROBLEM[button.sub_type], True))
    for param, clean, problem, required in checks:
        cleaned = clean(_column(out, param))
        out[f"{PARAM_PREFIX}{param}"] = cleaned
        lacks, bad = _judge(cleaned, problem, required=required)
        missing |= lacks
        invalid |= bad
    settle(out, running & missing, Outcome.SEND_FAILED, Reason.MISSING_PARAMETER)
    settle(out, running & ~missing & invalid, Outcome.SEND_FAILED, Reason.INVALID_PARAMETER)
    return out


def _stripped(values: pd.Series) -> pd.Series:
    """Text with surrounding spaces trimmed; null stays null."""
    return values.astype("str").str.strip()
