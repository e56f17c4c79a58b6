"""The send stage's process-wide settings while it sends."""

from __future__ import annotations

import gc

import pytest

from tasks.send.task import frozen_heap


def test_the_heap_is_frozen_while_sending_and_released_after_even_on_error() -> None:
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("send failed")
    assert gc.get_freeze_count() == 0
