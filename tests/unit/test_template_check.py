"""The campaign's template against what the Cloud business account says of it."""

from __future__ import annotations

import pytest

from connectors.whatsapp.protocol import TemplateInfo
from tasks.campaign import TemplateSpec
from tasks.template import TemplateRefusedError, check_template

SALE = TemplateInfo("spring_sale", "en", "APPROVED", "MARKETING", "NAMED", ("first_name",), 1)
ORDER = TemplateInfo("order_update", "en", "APPROVED", "UTILITY", "POSITIONAL", (), 1)


def spec(**values: object) -> TemplateSpec:
    return TemplateSpec.model_validate(
        {"name": "spring_sale", "body_params": ["first_name"]} | values
    )


def test_the_accounts_category_and_names_make_the_template() -> None:
    template = check_template(spec(), SALE)
    assert (template.category, template.parameter_format) == ("MARKETING", "NAMED")
    assert template.parameter_names == ("first_name",)


def test_a_category_that_matches_the_account_is_accepted() -> None:
    assert check_template(spec(category="MARKETING"), SALE).category == "MARKETING"


def test_a_category_the_account_contradicts_is_refused_naming_both() -> None:
    with pytest.raises(TemplateRefusedError, match=r"MARKETING in the business account.*UTILITY"):
        check_template(spec(category="UTILITY"), SALE)


@pytest.mark.parametrize(
    ("values", "info", "words"),
    [
        ({"body_params": ["name"]}, SALE, r"named parameters \[.first_name.\]"),
        ({"name": "order_update", "body_params": []}, ORDER, "takes 1 positional parameters"),
    ],
)
def test_parameters_that_do_not_fit_are_refused(
    values: dict[str, object], info: TemplateInfo, words: str
) -> None:
    with pytest.raises(TemplateRefusedError, match=words):
        check_template(spec(**values), info)


def test_a_v1_template_carries_the_campaigns_category() -> None:
    template = spec(namespace="acme", category="UTILITY").as_template()
    assert (template.namespace, template.category) == ("acme", "UTILITY")
