"""A real browser: pin two points on Explore, open them on the A vs B page, reopen its link in a new tab, and download
the hypervolume table as LaTeX from Compare."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from .test_browser import (CHROMIUM, CHROMIUM_ARGS, FIRST_RUN_LIMIT_MS, RERUN_LIMIT_MS, _wait_for_live_scrubber,
                           _wait_until_idle, page, server)  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _pins(page) -> tuple[str, str]:
    """The labels the two pickers show (a selectbox shows its choice in its input, or as text beside it)."""
    shown = []
    for slot in ("A", "B"):
        box = page.get_by_test_id("stSelectbox").filter(has_text=f"Model {slot}")
        field = box.locator("input")
        value = field.input_value() if field.count() else ""
        shown.append(value or box.locator('[data-baseweb="select"]').inner_text().strip())
    return shown[0], shown[1]


def test_pin_two_points_open_them_side_by_side_and_reopen_the_link(server, page, tmp_path):
    page.goto(server)
    _wait_for_live_scrubber(page)
    page.get_by_role("button", name="Pin as A").click()
    page.wait_for_selector("a:has-text('Open A vs B')")
    _wait_until_idle(page)
    thumb = page.locator('.cup-explore [role="slider"]')
    thumb.focus()
    thumb.press("ArrowLeft")
    page.wait_for_url("**intensity=*")
    _wait_until_idle(page)
    page.get_by_role("button", name="Pin as B").click()
    page.wait_for_selector("a:has-text('B: CUP')")
    _wait_until_idle(page)
    page.get_by_role("link", name="Open A vs B").click()
    page.wait_for_selector("h1:has-text('A vs B: explain a point')", timeout=FIRST_RUN_LIMIT_MS)
    page.wait_for_selector("h3:has-text('Embedding')", timeout=FIRST_RUN_LIMIT_MS)
    _wait_until_idle(page)
    query = parse_qs(urlparse(page.url).query)
    a, b = query["a"][0], query["b"][0]
    assert a.startswith("cup:") and b.startswith("cup:") and a != b
    shown = _pins(page)
    assert all(label.startswith("CUP, intensity") for label in shown), shown
    assert page.locator(".js-plotly-plot").count() == 8
    page.screenshot(path=str(tmp_path / "inspect.png"), full_page=True)

    # The link alone, in a fresh browser context: the same two models.
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1400})
    fresh = context.new_page()
    fresh.set_default_timeout(RERUN_LIMIT_MS)
    fresh.goto(page.url)
    fresh.wait_for_selector("h3:has-text('Embedding')", timeout=FIRST_RUN_LIMIT_MS)
    _wait_until_idle(fresh)
    assert _pins(fresh) == shown
    context.close()


def test_compare_downloads_the_hypervolume_table_as_latex(server, page, tmp_path):
    page.goto(f"{server}/compare?methods=CUP")
    page.wait_for_selector("h3:has-text('Figures and tables for a paper')", timeout=FIRST_RUN_LIMIT_MS)
    _wait_until_idle(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Hypervolume table (LaTeX)").click()
    target = tmp_path / "hypervolume.tex"
    download_info.value.save_as(target)
    latex = target.read_text()
    assert latex.startswith("\\begin{table}") and "\\toprule" in latex and "CUP & intensity" in latex
    assert download_info.value.suggested_filename.endswith(".tex")


def test_compare_picks_by_constraint_and_downloads_a_figure_as_svg(server, page, tmp_path):
    """A tighter retain bound moves the answer to a weaker intensity, selected as a click would; the fronts
    figure comes as an SVG file."""
    page.goto(f"{server}/compare?methods=CUP")
    page.wait_for_selector("h3:has-text('Figures and tables for a paper')", timeout=FIRST_RUN_LIMIT_MS)
    _wait_until_idle(page)
    answer = page.get_by_test_id("stSidebar").get_by_text("Forgets most:")
    first = answer.inner_text()
    assert "CUP, intensity" in first
    field = page.get_by_test_id("stSidebar").get_by_label("Retain accuracy at least (%)")
    field.fill("99.9")
    field.press("Enter")
    page.wait_for_function("(first) => { const node = [...document.querySelectorAll('[data-testid=stSidebar] p')]"
                           ".find(p => p.textContent.startsWith('Forgets most:'));"
                           " return !node || node.textContent !== first; }", arg=first)
    _wait_until_idle(page)
    if page.get_by_test_id("stSidebar").get_by_text("Forgets most:").count():  # else no point keeps 99.9 %
        tighter = page.get_by_test_id("stSidebar").get_by_text("Forgets most:").inner_text()
        assert tighter != first and "CUP, intensity" in tighter
        assert page.get_by_test_id("stSidebar").get_by_text("Selected on the plot.").count() == 1
    page.get_by_role("button", name="Prepare the figures as SVG and PDF").click()
    page.get_by_role("button", name="Fronts (SVG)").wait_for(timeout=FIRST_RUN_LIMIT_MS)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Fronts (SVG)").click()
    target = tmp_path / "fronts.svg"
    download_info.value.save_as(target)
    assert target.read_text().lstrip().startswith(("<svg", "<?xml"))
