"""The root of every error the pipeline raises on purpose, split by what the caller must do.

```
PipelineError
├── TransientError        may pass: retry later, slow down (rate limits, 5xx, an unreachable
│                         service, a network failure that is safe to repeat)
├── RecipientError        that customer's (or that item's) own: record it and move on
├── StopRunError          campaign-level: every further step would fail the same way or must not
│                         happen (template, credentials, account, audience, a busy or lost
│                         campaign, the contact-check policy); stop the run, retry it later
└── OutcomeUnknownError   may have been applied: never repeat it blindly
```
Each API flavour's errors (`connectors.whatsapp.errors`) and every other module's errors derive
from exactly one of the four kinds; callers ask the kind, never a list of concrete classes.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["transient", "recipient", "stop_run", "outcome_unknown"]


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class TransientError(PipelineError):
    """A failure that may pass: retry with backoff."""


class RecipientError(PipelineError):
    """The failure is one recipient's (or one item's) own: record it and move on."""


class StopRunError(PipelineError):
    """Not one recipient's fault: the run stops; a later run retries once the cause is fixed."""


class OutcomeUnknownError(PipelineError):
    """The request may have been applied: the caller must not repeat it blindly."""


_KINDS: tuple[tuple[type[PipelineError], Kind], ...] = (
    (TransientError, "transient"),
    (RecipientError, "recipient"),
    (StopRunError, "stop_run"),
    (OutcomeUnknownError, "outcome_unknown"),
)


def kind_of(error: BaseException) -> Kind | None:
    """Which of the four kinds an error is; None for an error the pipeline did not foresee."""
    for cls, kind in _KINDS:
        if isinstance(error, cls):
            return kind
    return None
