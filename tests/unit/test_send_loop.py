"""The send loop's parts that need no sender."""

from __future__ import annotations

from collections.abc import Iterator

from tasks.send.loop import Pending


def test_pending_sends_are_read_only_as_slots_free_up() -> None:
    pulled: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            pulled.append(i)
            yield i

    pending = Pending(items())  # type: ignore[arg-type]
    assert pulled == [0] and pending
    assert pending.take(0) == [] and pending.take(2) == [0, 1] and pulled == [0, 1, 2]
    assert pending.take(9) == [2, 3, 4] and not pending and pending.take(1) == []
