"""The campaign's template as its sender's API needs it, refused before anything is checked or sent.

v1 addresses a template by namespace, name and language. On the Cloud API the template is looked
up in the business account: it must be APPROVED; its category decides the route (MARKETING to
`/marketing_messages` unless the campaign forces `/messages`); its parameter format decides the
body: a NAMED template's parameter names must be the campaign's `body_params`, a POSITIONAL one
needs exactly as many `body_params` as it has parameters.
"""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE

from connectors.errors import StopRunError
from connectors.masking import masked_errors
from connectors.whatsapp import (
    Template,
    TemplateDirectory,
    TemplateInfo,
    WhatsAppSettings,
    open_sender,
)
from tasks.campaign import TemplateSpec


class TemplateRefusedError(StopRunError):
    """The campaign's template cannot be sent as given: the message names the field to fix."""


def check_template(spec: TemplateSpec, info: TemplateInfo) -> Template:
    """The Cloud template to send, or `TemplateRefusedError` naming what does not fit."""
    where = f'template "{spec.name}" ({spec.language})'
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
    return Template(
        namespace=None,
        name=spec.name,
        language=spec.language,
        category=info.category,
        parameter_format=info.parameter_format,
        parameter_names=tuple(wanted) if info.parameter_format == "NAMED" else (),
    )


def resolve_template(spec: TemplateSpec, settings: WhatsAppSettings) -> Template:
    """The template as `settings`' API sends it, checked against the API where it can say."""
    if settings.api != "cloud":
        if not spec.namespace:
            raise TemplateRefusedError(
                "template.namespace is required by the v1 API: give the business's namespace"
            )
        return spec.as_template()

    async def lookup() -> TemplateInfo:
        async with open_sender(settings) as sender:
            if not isinstance(sender, TemplateDirectory):
                raise TemplateRefusedError(f"sender {sender.sender_id} cannot look templates up")
            return await sender.lookup_template(spec.name, spec.language)

    return check_template(spec, asyncio.run(lookup()))


@task(name="template", cache_policy=NO_CACHE)
@masked_errors
def resolve_template_task(spec: TemplateSpec, settings: WhatsAppSettings) -> Template:
    """Prefect task: the campaign's template, resolved and checked before the audience is read."""
    return resolve_template(spec, settings)
