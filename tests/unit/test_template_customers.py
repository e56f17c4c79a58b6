"""Per-customer template checks before anything is checked or sent: each customer's template
language, and their header and button values as the API would take them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from connectors.vocabulary import Outcome, Reason
from tasks.template import Fill, TemplateSpec
from tasks.template.customers import check_fills, choose_template_languages
from tests.helpers import make_chunk

LINK = "https://cdn.example.com/invoice.pdf"


def _fill(**values: Any) -> Fill:
    spec = {
        "name": "invoice_ready",
        "namespace": "acme_ns",
        "language": "en",
        "languages": ["de", "pt_BR"],
        "body_params": ["first_name"],
        "header": {"format": "DOCUMENT", "link_param": "invoice", "filename_param": "file"},
        "buttons": [
            {"index": 0, "sub_type": "url", "param": "path"},
            {"index": 1, "sub_type": "copy_code", "param": "coupon"},
        ],
    }
    return Fill.declared(TemplateSpec.model_validate(spec | values))


def _frame(rows: list[dict[str, str | None]]) -> pd.DataFrame:
    """A chunk of customers 0..n-1, each with a good invoice, path and coupon unless given."""
    frame = make_chunk([f"+4915112345{i:03d}" for i in range(len(rows))])
    good = {"invoice": LINK, "file": None, "path": "orders/A17", "coupon": "SPRING15"}
    for param, value in good.items():
        column = [row.get(param, value) for row in rows]
        frame[f"param_{param}"] = pd.Series(column, dtype="str")
    frame["language"] = pd.Series([row.get("language") for row in rows], dtype="str")
    return frame


def _results(frame: pd.DataFrame) -> list[tuple[str | None, str | None]]:
    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    return [(text(o), text(r)) for o, r in zip(frame["outcome"], frame["reason"], strict=True)]


def _checked(rows: list[dict[str, str | None]], fill: Fill | None = None) -> pd.DataFrame:
    fill = fill or _fill()
    return check_fills(choose_template_languages(_frame(rows), fill), fill)


FAILED_MISSING = (Outcome.SEND_FAILED, Reason.MISSING_PARAMETER)
FAILED_INVALID = (Outcome.SEND_FAILED, Reason.INVALID_PARAMETER)


def test_customers_with_good_values_stay_in_the_running() -> None:
    out = _checked([{}, {"file": "invoice-17.pdf"}])
    assert _results(out) == [(None, None), (None, None)]


def test_a_null_link_or_coupon_fails_that_customer_only_as_missing() -> None:
    out = _checked([{"invoice": None}, {}, {"coupon": None}, {"coupon": "  "}, {"path": ""}])
    assert _results(out) == [FAILED_MISSING, (None, None), FAILED_MISSING] + [FAILED_MISSING] * 2


def test_values_the_api_would_refuse_fail_that_customer_as_invalid() -> None:
    rows: list[dict[str, str | None]] = [
        {"invoice": "http://cdn.example.com/invoice.pdf"},
        {"path": "orders/A 17"},
        {"path": "commandes/été"},
        {"coupon": "SPRING2026SAVE15"},
        {"coupon": "SPRING2026SAVE1"},
    ]
    assert _results(_checked(rows)) == [FAILED_INVALID] * 4 + [(None, None)]


def test_a_customer_missing_one_value_and_holding_a_bad_other_is_missing() -> None:
    out = _checked([{"invoice": None, "coupon": "SPRING2026SAVE15"}])
    assert _results(out) == [FAILED_MISSING]


def test_a_null_file_name_is_fine_and_sends_none() -> None:
    out = _checked([{"file": None}, {"file": "  "}])
    assert _results(out) == [(None, None), (None, None)]
    assert out["param_file"].isna().iloc[0]


def test_values_are_written_back_trimmed() -> None:
    out = _checked(
        [
            {
                "invoice": f"  {LINK} ",
                "path": " orders/A17\t",
                "coupon": " SPRING15 ",
                "file": " a.pdf ",
            }
        ]
    )
    row = out.iloc[0]
    assert (row["param_invoice"], row["param_path"], row["param_coupon"], row["param_file"]) == (
        LINK,
        "orders/A17",
        "SPRING15",
        "a.pdf",
    )
    assert _results(out) == [(None, None)]


def test_customers_already_out_of_the_running_are_untouched() -> None:
    frame = _frame([{"invoice": "http://x.example/a.pdf", "coupon": None}, {"language": "fr"}])
    frame.loc[:, "outcome"] = Outcome.EXCLUDED_DUPLICATE
    frame.loc[:, "reason"] = "same_number"
    fill = _fill(language_fallback=False)
    out = check_fills(choose_template_languages(frame, fill), fill)
    assert _results(out) == [(Outcome.EXCLUDED_DUPLICATE, "same_number")] * 2
    assert out["template_language"].isna().all()


def test_without_fallback_a_language_the_template_lacks_excludes_the_customer() -> None:
    fill = _fill(language_fallback=False)
    out = _checked([{"language": "fr"}, {"language": "de-AT"}, {"language": None}], fill)
    assert _results(out) == [
        (Outcome.EXCLUDED_POLICY, Reason.NO_TEMPLATE_LANGUAGE),
        (None, None),
        (None, None),
    ]
    assert out["template_language"].isna().iloc[0]
    assert out["template_language"].iloc[1:].tolist() == ["de", "en"]


def test_a_customer_excluded_for_language_is_not_also_failed_for_a_value() -> None:
    out = _checked([{"language": "fr", "coupon": None}], _fill(language_fallback=False))
    assert _results(out) == [(Outcome.EXCLUDED_POLICY, Reason.NO_TEMPLATE_LANGUAGE)]


def test_with_fallback_a_language_the_template_lacks_gets_the_campaigns() -> None:
    out = _checked([{"language": "fr"}, {"language": "pt"}, {"language": "12"}])
    assert out["template_language"].tolist() == ["en", "pt_BR", "en"]
    assert _results(out) == [(None, None)] * 3


def test_an_audience_without_a_language_column_gets_the_campaigns_language() -> None:
    fill = _fill(language_fallback=False)
    frame = _frame([{}, {}]).drop(columns="language")
    out = choose_template_languages(frame, fill)
    assert out["template_language"].tolist() == ["en", "en"]


def test_a_missing_body_parameter_still_fails_as_missing() -> None:
    frame = _frame([{}, {}])
    frame.loc[1, "param_first_name"] = None
    fill = _fill()
    out = check_fills(choose_template_languages(frame, fill), fill)
    assert _results(out) == [(None, None), FAILED_MISSING]


def test_a_link_that_cannot_be_parsed_fails_that_customer_only() -> None:
    out = _checked([{"invoice": "https://[cdn.example.com/a.pdf"}, {}])
    assert _results(out) == [FAILED_INVALID, (None, None)]
