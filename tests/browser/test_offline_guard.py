"""The guard that keeps every browser test on the live server."""

import pytest

pytestmark = pytest.mark.browser


def test_request_to_another_host_is_aborted_and_recorded(page, traffic):
    page.goto("/api/docs/")

    outcome = page.evaluate(
        "fetch('https://cdn.example.com/lib.js').then(() => 'loaded', () => 'blocked')"
    )

    assert outcome == "blocked"
    assert traffic.foreign_requests == ["GET https://cdn.example.com/lib.js"]
    # Recorded as it should be; cleared so the page fixture's own check passes.
    traffic.foreign_requests.clear()
