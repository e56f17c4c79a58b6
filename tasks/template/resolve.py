"""The campaign's template as its sender's API needs it, refused before anything is checked or sent.

v1 addresses a template by namespace, name and language, as the campaign declares it; when the
campaign also declares its `components` (as Meta lists them), its body, header and buttons are
checked against them as on Cloud. On the
Cloud API every language of the template is looked up in the business account at once: the
campaign's language must be APPROVED, its category decides the route (MARKETING to
`/marketing_messages` unless the campaign forces `/messages`), its parameter format the body (a
NAMED template's parameter names must be the campaign's `body_params`, a POSITIONAL one needs
exactly as many), and its header and buttons must be the campaign's. Other APPROVED languages
(those `template.languages` lists, when it does) are checked the same way and sent to the
customers who speak them.
"""

from __future__ import annotations

import asyncio
import dataclasses

from prefect import task
from prefect.cache_policies import NO_CACHE

from connectors.masking import masked_errors
from connectors.whatsapp import (
    Template,
    TemplateDirectory,
    TemplateInfo,
    WhatsAppSettings,
    open_sender,
)
from connectors.whatsapp.described import template_info
from tasks.template.fill import Fill
from tasks.template.fit import TemplateRefusedError, check_shape
from tasks.template.spec import TemplateSpec


def check_template(spec: TemplateSpec, info: TemplateInfo) -> Template:
    """The Cloud template to send, or `TemplateRefusedError` naming what does not fit."""
    where = f'template "{spec.name}" ({info.language})'
    if not info.approved:
        raise TemplateRefusedError(
            f"{where} is {info.status} in the business account; only APPROVED templates can be "
            "sent: pick another template or wait for Meta's review"
        )
    if spec.category is not None and spec.category != info.category:
        raise TemplateRefusedError(
            f"{where} is {info.category} in the business account; template.category says "
            f"{spec.category}: leave template.category out on the Cloud API, or correct it"
        )
    wanted = list(spec.body_params)
    if info.parameter_format == "NAMED" and sorted(info.parameter_names) != sorted(wanted):
        raise TemplateRefusedError(
            f"{where} takes the named parameters {list(info.parameter_names)}; "
            f"template.body_params gives {wanted}: name the same parameters"
        )
    if info.parameter_format != "NAMED" and info.parameter_count != len(wanted):
        raise TemplateRefusedError(
            f"{where} takes {info.parameter_count} positional parameters; "
            f"template.body_params gives {len(wanted)}: give one column per parameter, in order"
        )
    check_shape(spec, info.shape, where)
    # The body's names in the order the campaign gives its parameters, not the template's.
    named = tuple(wanted) if info.parameter_format == "NAMED" else ()
    return dataclasses.replace(info.template(), parameter_names=named)


def declared_info(spec: TemplateSpec) -> TemplateInfo:
    """The template as the campaign declares it (v1): approved, in its own category."""
    described = {
        "name": spec.name,
        "language": spec.language,
        "status": "APPROVED",
        "category": spec.category,
        "components": spec.components,
    }
    return template_info(described)


def cloud_fill(spec: TemplateSpec, infos: list[TemplateInfo], account: str) -> Fill:
    """The campaign's translations from the account's: its own language must be there and fit;
    every other one it lists must be APPROVED and fit; unlisted ones are used when APPROVED."""
    by_language = {info.language: info for info in infos}
    for code in (spec.language, *spec.languages):
        if code not in by_language:
            known = ", ".join(sorted(by_language)) or "none"
            raise TemplateRefusedError(
                f'template "{spec.name}" in language "{code}" is not in {account} (its '
                f"languages there: {known}): check the template's name and the campaign's "
                "language codes, as the template was created (e.g. en or en_US); nothing was sent"
            )
    wanted = spec.languages or [c for c, i in sorted(by_language.items()) if i.approved]
    codes = [spec.language, *(c for c in wanted if c != spec.language)]
    category = by_language[spec.language].category
    templates = {}
    for code in codes:
        template = check_template(spec, by_language[code])
        if template.category != category:
            raise TemplateRefusedError(
                f'template "{spec.name}" is {category} in {spec.language} but '
                f"{template.category} in {code}: one campaign sends one category"
            )
        templates[code] = template
    return Fill.of(spec, templates)


def resolve_template(spec: TemplateSpec, settings: WhatsAppSettings) -> Fill:
    """How each customer's message is filled, checked against the API where it can say."""
    if settings.api != "cloud":
        if not spec.namespace:
            raise TemplateRefusedError(
                "template.namespace is required by the v1 API: give the business's namespace"
            )
        if spec.components is not None:
            check_template(spec, declared_info(spec))
        return Fill.declared(spec)
    if spec.components is not None:
        raise TemplateRefusedError(
            "template.components declares a v1 template; the Cloud API reads the components from "
            "the business account: leave template.components out"
        )

    async def lookup() -> list[TemplateInfo]:
        async with open_sender(settings) as sender:
            if not isinstance(sender, TemplateDirectory):
                raise TemplateRefusedError(f"sender {sender.sender_id} cannot look templates up")
            return await sender.lookup_translations(spec.name)

    account = f"WhatsApp Business Account {settings.waba_id}"
    return cloud_fill(spec, asyncio.run(lookup()), account)


@task(name="template", cache_policy=NO_CACHE)
@masked_errors
def resolve_template_task(spec: TemplateSpec, settings: WhatsAppSettings) -> Fill:
    """Prefect task: the campaign's template, resolved and checked before the audience is read."""
    return resolve_template(spec, settings)
