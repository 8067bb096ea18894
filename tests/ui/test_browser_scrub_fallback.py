"""Where the live scrubber cannot load (here: plotly.js blocked), the page draws today's slider with a notice.

Its own server: on a server that has already served the live scrubber to other browsers, the blocked
plotly.js was still found by the page (not understood yet; see the helper's report)."""

from __future__ import annotations

import re

import pytest

from .test_browser_scrub import page, server  # noqa: F401  (fixtures: a server of this module's own)

pytestmark = pytest.mark.browser


def test_the_page_falls_back_to_the_slider_with_a_notice_where_plotly_cannot_load(server, page):
    page.context.route(re.compile(r".*plotly\.min\.js.*"), lambda route: route.abort())
    page.goto(server)
    page.get_by_text("Live scrubbing is not available here").wait_for()
    page.wait_for_selector('[data-testid="stSlider"]')
    assert page.locator(".cup-explore [role=slider]").count() == 0
