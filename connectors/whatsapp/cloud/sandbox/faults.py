"""Which fault the next request to an endpoint gets: a script first, then seeded random draws.

Fault kinds: the v1 sandbox's (`onprem.sandbox.config.FAULT_KINDS`: `500` answers code 1, `503`
code 2, `reset` closes the connection after the request was read, `hang` answers nothing until
the client leaves, `garbage` is a 200 whose body is not JSON), plus `code:<n>`: the Graph error
answer of Cloud code `n`, for any code of `errors.CATALOGUE`, with that table's HTTP status
(130429 with the config's `throttle_status` and `Retry-After`). `code:<n>` is how a test gets a
code the sandbox has no natural trigger for (131042 payment, 368 restricted, 80007 ...), e.g.
`faults.script("messages", ["code:131042"])` or `POST /sandbox/faults {"script": {"messages":
["code:131042"]}}`. The plan takes the endpoint names as a parameter.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeAlias, TypeVar

from connectors.whatsapp.cloud.sandbox.errors import CATALOGUE
from connectors.whatsapp.onprem.sandbox.config import FAULT_KINDS

CloudFault: TypeAlias = str
"""A v1 fault kind (`500`, `503`, `reset`, `hang`, `garbage`) or `code:<n>`."""
CODE_PREFIX: Final = "code:"

_E = TypeVar("_E", bound=str)
_K = TypeVar("_K", bound=str)


def fault_code(kind: str) -> int | None:
    """The Cloud code a `code:<n>` fault answers; None for the other kinds."""
    if not kind.startswith(CODE_PREFIX):
        return None
    number = kind.removeprefix(CODE_PREFIX)
    return int(number) if number.isdigit() else None


def check_fault(kind: str) -> CloudFault:
    """Return `kind` when it is a fault the Cloud sandbox knows; else raise naming the kinds."""
    if kind.startswith(CODE_PREFIX):
        code = fault_code(kind)
        if code is None or code not in CATALOGUE:
            known = ", ".join(str(c) for c in sorted(CATALOGUE))
            raise ValueError(f"unknown fault {kind!r}; code:<n> takes one of {known}")
        return kind
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)} or code:<n>")
    return kind


class FaultPlan:
    """Scripted and random faults per endpoint; thread-safe (tests steer it while it serves)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        rates: Mapping[_E, Mapping[_K, float]],
        script: Mapping[_E, Sequence[_K]],
        seed: int,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rates: dict[str, dict[CloudFault, float]] = {}
        self._scripts: dict[str, deque[CloudFault]] = {}
        for endpoint, probabilities in rates.items():
            self.set_rates(endpoint, probabilities)
        for endpoint, kinds in script.items():
            self.script(endpoint, kinds)

    def check_endpoint(self, endpoint: str) -> str:
        """Return `endpoint`, or raise naming the accepted values."""
        if endpoint not in self.endpoints:
            raise ValueError(
                f"unknown endpoint {endpoint!r}; use one of {', '.join(self.endpoints)}"
            )
        return endpoint

    def script(self, endpoint: str, faults: Iterable[str]) -> None:
        """Queue faults for the next requests to `endpoint`, in order; then it answers normally."""
        kinds = [check_fault(k) for k in faults]
        with self._lock:
            self._scripts.setdefault(self.check_endpoint(endpoint), deque()).extend(kinds)

    def set_rates(self, endpoint: str, rates: Mapping[_K, float]) -> None:
        """Replace the fault probabilities of one endpoint (empty mapping: no random faults)."""
        self.check_endpoint(endpoint)
        checked = {check_fault(kind): float(p) for kind, p in rates.items()}
        for kind, probability in checked.items():
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"fault rate {endpoint}/{kind}={probability!r}; use 0..1")
        if sum(checked.values()) > 1.0:
            raise ValueError(f"fault rates for {endpoint} sum above 1: {checked!r}")
        with self._lock:
            self._rates[endpoint] = checked

    def clear(self) -> None:
        """Drop every scripted fault and fault probability."""
        with self._lock:
            self._scripts.clear()
            self._rates.clear()

    def next(self, endpoint: str) -> CloudFault | None:
        """The fault this request gets: the script first, then one seeded draw per request."""
        with self._lock:
            queue = self._scripts.get(endpoint)
            if queue:
                return queue.popleft()
            rates = self._rates.get(endpoint)
            if not rates:
                return None
            draw = self._rng.random()
        for kind, probability in rates.items():
            if draw < probability:
                return kind
            draw -= probability
        return None
