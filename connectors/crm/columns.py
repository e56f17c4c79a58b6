"""The audience's columns: which the frame knows, which a run needs, and the refusal of the rest."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from connectors.errors import StopRunError
from connectors.vocabulary import (
    FLAG_COLUMNS,
    OPTIONAL_COLUMNS,
    PARAM_PREFIX,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMNS,
)

__all__ = [
    "FLAG_COLUMNS",
    "OPTIONAL_COLUMNS",
    "PARAM_PREFIX",
    "REQUIRED_COLUMNS",
    "TIMESTAMP_COLUMNS",
    "UNREADABLE_CONSENT",
    "AudienceError",
    "check_columns",
    "check_frame_name",
    "missing_param_message",
]

# Added to each chunk: True where opt_in_at or opt_out_at held a value that is not a moment.
UNREADABLE_CONSENT: Final = "unreadable_consent"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AudienceError(StopRunError, ValueError):
    """The audience definition cannot be run as given; the message says what to change."""


def check_frame_name(name: str) -> None:
    """Refuse a column name the frame does not know."""
    allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    if name not in allowed and not (name.startswith(PARAM_PREFIX) and _IDENTIFIER.match(name)):
        raise AudienceError(
            f'audience column "{name}" is not a frame column; use one of {", ".join(allowed)} '
            "or param_<name> for a template parameter"
        )


def missing_param_message(param: str) -> str:
    """The refusal of a template parameter (body, header, button) the audience does not return."""
    return (
        f'template parameter "{param}" is not returned by the audience: map a column as '
        f"{PARAM_PREFIX}{param}"
    )


def check_columns(names: list[str], required_params: Sequence[str] = ()) -> None:
    """Refuse a result with a missing required column or template parameter column, a column
    the frame does not know, or a column named twice."""
    for required in REQUIRED_COLUMNS:
        if required not in names:
            raise AudienceError(
                f'audience returns no column "{required}"; map your column AS {required}'
            )
    for name in names:
        check_frame_name(name)
        if names.count(name) > 1:
            raise AudienceError(f'audience returns column "{name}" twice; keep one')
    for wanted in required_params:
        if wanted not in names:
            raise AudienceError(missing_param_message(wanted.removeprefix(PARAM_PREFIX)))
