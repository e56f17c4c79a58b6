"""What the preflight shows of the API's URL in its messages."""

from __future__ import annotations

import pytest

from connectors.masking import mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@host/", "https://user:***@host/"),
        ("https://host/base", "https://host/base"),
        ("https://user@host/", "https://user@host/"),
        ("https://host/v1?key=abc&page=2", "https://host/v1?key=***&page=2"),
    ],
)
def test_api_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert mask_url(url) == shown
