"""The live scrubbers in a real browser: values change while the pointer drags, nothing reaches the server
until release, and the released value reaches the URL and the export. Timing is bench/browser_scrub.py's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cup_core import load_exported
from ui import scrubber

from .test_browser import (CHROMIUM, CHROMIUM_ARGS, FIRST_RUN_LIMIT_MS, RERUN_LIMIT_MS, _serving, _steady_box,
                           _wait_until_idle)

pytestmark = pytest.mark.browser

SHOWN = ("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done("
         "[document.querySelector('.cup-explore .cup-heading').textContent,"
         " document.querySelector('.cup-explore .cup-card-value').textContent]))))")


@pytest.fixture(scope="module")
def server(warm_cache: Path):
    with _serving(warm_cache) as url:
        yield url


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(RERUN_LIMIT_MS)
        page.sent, page.received = [], []  # websocket frames the page sent and received, in their order

        def watch(socket) -> None:
            socket.on("framesent", lambda frame: page.sent.append(frame))
            socket.on("framereceived", lambda frame: page.received.append(frame))

        page.on("websocket", watch)
        yield page
        browser.close()


def open_live(page, url: str, selector: str = ".cup-explore",
              fallback: str = '[data-testid="stSlider"]') -> None:
    """Opens `url` and waits until the live component has drawn and the page's fallback widgets are gone."""
    page.goto(url)
    page.wait_for_selector(f"{selector} [role=slider]")
    page.wait_for_function("fallback => !document.querySelector(fallback)", arg=fallback)
    _wait_until_idle(page)


FETCHED = """pattern => performance.getEntriesByType('resource').map(e => e.name.split('/').slice(-2).join('/'))
  .filter(name => new RegExp(pattern).test(name))"""


def test_a_fresh_servers_first_page_runs_plotly_and_the_scrubbers_modules_while_the_library_loads(warm_cache):
    """A fresh server's first page waits seconds for PyTorch and the library: the browser fetches plotly.js meanwhile
    (scrubber.preload), then every live scrubber's module (one drawn after the models are computed waited for its
    module and then its common.js, 0.2 s of a first open), not after the live scrubber is mounted, so the scrubber
    draws as soon as it is. Each module is fetched once: Streamlit's import finds the one the preload ran (the
    Explore page draws only its own scrubber, so the others are the preload's)."""
    from playwright.sync_api import sync_playwright

    names = [name for name in scrubber.COMPONENTS if name != "preload"]
    modules = [f"{scrubber.PACKAGE}.{name}/{file}.js" for name in names for file in (name, "common")]
    pattern = "[.](" + "|".join(names) + ")/\\w+[.]js$|plotly[.]min[.]js$"
    with _serving(warm_cache) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector(".cup-explore [role=slider]", timeout=FIRST_RUN_LIMIT_MS)
        page.wait_for_function(f"() => ({FETCHED})({pattern!r}).length > {len(modules)}", timeout=FIRST_RUN_LIMIT_MS)
        _wait_until_idle(page)
        fetched = page.evaluate(FETCHED, pattern)
        browser.close()
    assert fetched[0].endswith("plotly.min.js"), fetched
    assert sorted(fetched[1:]) == sorted(modules), fetched


def test_a_drag_redraws_before_release_and_the_released_value_reaches_the_url_and_the_export(server, page, tmp_path):
    open_live(page, server)
    track = page.locator(".cup-explore .cup-slider-track").bounding_box()
    y = track["y"] + track["height"] / 2
    before = len(page.sent)
    page.mouse.move(track["x"], y)
    page.mouse.down()
    shown = []
    for k in range(21):  # one grid step at a time, left to right
        page.mouse.move(track["x"] + track["width"] * k / 20, y)
        shown.append(tuple(page.evaluate(SHOWN)))
    assert len(page.sent) == before, "the drag talked to the server before release"
    assert [heading for heading, _ in shown] == [f"γ = {k / 20:g}" for k in range(21)]
    assert len({card for _, card in shown}) > 10  # the forget accuracy card moved with it
    page.mouse.move(track["x"] + track["width"] * 0.3, y)
    page.mouse.up()
    page.wait_for_url("**intensity=0.3")
    assert len(page.sent) > before
    _wait_until_idle(page)
    assert page.evaluate(SHOWN)[0] == "γ = 0.3"
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this model").click()
    target = tmp_path / "model.zip"
    download_info.value.save_as(target)
    _, card = load_exported(target)
    assert card["value"] == 0.3
    page.screenshot(path=str(tmp_path / "explore-live.png"), full_page=True)


def test_keys_move_the_slider_and_a_click_on_the_frontier_jumps_there(server, page):
    open_live(page, server + "/?intensity=0.5")
    thumb = page.locator(".cup-explore [role=slider]")
    assert thumb.get_attribute("aria-valuenow") == "0.5"
    thumb.focus()
    thumb.press("ArrowRight")
    assert page.evaluate(SHOWN)[0] == "γ = 0.55"
    thumb.press("End")
    assert thumb.get_attribute("aria-valuetext") == "γ = 1"
    thumb.press("Home")
    assert page.evaluate(SHOWN)[0] == "γ = 0"
    page.wait_for_function("() => !location.search.includes('intensity=0.5')")  # keys settle, then Python hears
    _wait_until_idle(page)
    points = page.locator(".cup-explore .js-plotly-plot .scatterlayer .trace").nth(1).locator(".point")
    box = _steady_box(page, points.nth(16))  # γ = 0.8
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector('.cup-explore .cup-heading').textContent === 'γ = 0.8'")
    page.wait_for_url("**intensity=0.8")


def test_learn_regions_morph_while_dragging_and_the_pivot_turns_with_them(server, page):
    open_live(page, server + "/learn", ".cup-learn")
    page.wait_for_selector(".cup-pivot .js-plotly-plot")
    track = page.locator(".cup-learn .cup-slider-track").bounding_box()
    y = track["y"] + track["height"] / 2
    read = ("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(["
            "document.querySelector('.cup-learn .cup-heading').textContent,"
            "document.querySelector('.cup-learn canvas:not(:first-child)') && "
            "document.querySelectorAll('.cup-learn canvas')[1].toDataURL().length,"
            "document.querySelector('.cup-pivot .cup-psi').textContent]))))")
    before = len(page.sent)
    page.mouse.move(track["x"], y)
    page.mouse.down()
    shown = []
    for k in range(1, 11):
        page.mouse.move(track["x"] + track["width"] * k / 10, y)
        shown.append(page.evaluate(read))
    assert len(page.sent) == before
    assert [heading for heading, _, _ in shown] == [f"CUP, γ = {k / 10:g}" for k in range(1, 11)]
    assert len({picture for _, picture, _ in shown}) > 5  # the regions' picture changed with γ
    assert len({psi for _, _, psi in shown}) == 10  # ψ = γ·Θ turned with every move
    page.mouse.move(track["x"] + track["width"] * 0.25, y)
    page.mouse.up()
    page.wait_for_url("**learn_intensity=0.25")
    _wait_until_idle(page)
    assert page.locator(".cup-learn [role=slider]").get_attribute("aria-valuenow") == "0.25"
    assert "γ = 0.25 run" in page.locator("[data-testid=stCaptionContainer]", has_text="run: forget loss").inner_text()


COMPARE_SHOWN = ("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => { "
                 "const root = document.querySelector('.cup-compare'); "
                 "const layer = [...root.querySelectorAll('.scatterlayer .trace')].find(n => n.__data__?.[0]?.trace?.name === 'selected'); "
                 "done([root.querySelector('.cup-heading').textContent, root.querySelector('.cup-card-value').textContent, "
                 "root.querySelector('[role=slider]').getAttribute('aria-valuenow'), "
                 "layer?.querySelector('.point')?.getAttribute('transform') ?? null]); })))")
# The centre, in page pixels, of the marker of `name`'s trace farthest from every other marker (markers overlap).
LONELY_POINT = """(name) => {
  const root = document.querySelector('.cup-compare');
  const marks = [...root.querySelectorAll('.scatterlayer .trace')].flatMap((node) =>
    [...node.querySelectorAll('.point')].map((point) => ({ name: node.__data__?.[0]?.trace?.name, box: point.getBoundingClientRect() })));
  const centre = (b) => [b.x + b.width / 2, b.y + b.height / 2];
  let best = null, room = -1;
  for (const mark of marks.filter((m) => m.name === name)) {
    const [x, y] = centre(mark.box);
    const nearest = Math.min(...marks.filter((m) => m !== mark).map((m) => Math.hypot(centre(m.box)[0] - x, centre(m.box)[1] - y)));
    if (nearest > room) { room = nearest; best = [x, y]; }
  }
  return best;
}"""


@pytest.fixture(scope="module")
def compared_ga(warm_cache: Path) -> str:
    """CUP and GA (a log-spaced learning rate, calibrated first), 5 points, computed; the Compare page's query."""
    from cup_core import resolve_device, run_sweep
    from ui.services import catalogue, compare

    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    run_sweep(experiment, compare.compare_plan(["cup", "ga"], 5, [0]), resolve_device("cpu"))
    return "/compare?methods=CUP&methods=GA&points=5"


def test_compare_scrubs_a_log_knob_live_and_a_release_or_a_click_selects_the_point(server, compared_ga, page,
                                                                                    tmp_path):
    from cup_core.methods import get_method

    open_live(page, server + compared_ga, ".cup-compare", f".st-key-{scrubber.COMPARE_FALLBACK} .js-plotly-plot")
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Scrub the knob of")
    picker.click()
    page.get_by_role("option", name="GA", exact=True).click()
    page.wait_for_function("() => document.querySelector('.cup-compare .cup-slider-label')?.textContent === 'GA: learning rate'")
    _wait_until_idle(page)
    thumb = page.locator(".cup-compare [role=slider]")
    assert thumb.get_attribute("aria-valuetext").startswith("learning rate = ")  # the knob, not "γ ="
    thumb.focus()
    values, sent = [], len(page.sent)
    for key in ["Home"] + ["ArrowRight"] * 4:
        thumb.press(key)
        values.append(float(thumb.get_attribute("aria-valuenow")))
    assert values == sorted(values) and len(set(values)) == 5
    positions = get_method("ga").position(values)
    page.wait_for_function("() => new Promise(done => setTimeout(() => done(true), 500))")  # keys settle: a release
    assert len(page.sent) > sent
    _wait_until_idle(page)

    # A drag, one GA value at a time where the log scale places it, from the right end to the left: the ring and
    # the cards move in the browser, and nothing is sent to the server before release.
    track = page.locator(".cup-compare .cup-slider-track").bounding_box()
    y = track["y"] + track["height"] / 2
    page.mouse.move(track["x"] + track["width"], y)
    before = len(page.sent)
    page.mouse.down()
    shown = []
    for position in reversed(positions):
        page.mouse.move(track["x"] + track["width"] * position, y)
        shown.append(page.evaluate(COMPARE_SHOWN))
    assert len(page.sent) == before, "the drag talked to the server before release"
    assert [float(value) for _, _, value, _ in shown] == values[::-1]  # linear placement would skip the middle ones
    assert [heading for heading, _, _, _ in shown] == [f"Selected: GA, learning rate = {v:g}" for v in values[::-1]]
    assert len({ring for _, _, _, ring in shown}) == 5 and len({card for _, card, _, _ in shown}) > 1
    page.mouse.move(track["x"] + track["width"] * positions[2], y)
    received = len(page.received)
    page.mouse.up()
    # The server answers the release with its rerun's messages: a quick rerun can start and end within one frame of
    # the page, never showing a running state to wait for.
    deadline = time.monotonic() + RERUN_LIMIT_MS / 1000
    while len(page.received) == received:
        assert time.monotonic() < deadline, "the server did not answer the release"
        page.wait_for_timeout(50)  # polling interval
    _wait_until_idle(page)
    assert len(page.sent) > before  # the release reached Python, which selected the point: its export follows
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this model").click()
    target = tmp_path / "ga.zip"
    download_info.value.save_as(target)
    _, card = load_exported(target)
    assert (card["method"], card["value"]) == ("ga", pytest.approx(values[2]))
    assert page.evaluate(COMPARE_SHOWN)[0] == f"Selected: GA, learning rate = {values[2]:g}"
    assert "methods=GA" in page.url  # the page's query stays as it was
    page.screenshot(path=str(tmp_path / "compare-live.png"), full_page=True)

    # A click on a CUP point switches the slider to CUP's intensity and selects it; the picker follows.
    x, y = page.evaluate(LONELY_POINT, "CUP")
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('.cup-compare .cup-slider-label').textContent === 'CUP: intensity'")
    heading = page.evaluate(COMPARE_SHOWN)[0]
    assert heading.startswith("Selected: CUP, intensity = ")
    assert thumb.get_attribute("aria-valuetext").startswith("intensity = ")
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stSelectbox]')].some(s => "
                           "s.innerText.includes('Scrub the knob of') && (s.querySelector('input')?.value "
                           "?? s.innerText).includes('CUP'))")  # the picker follows the selection
    _wait_until_idle(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export this model").click()
    download_info.value.save_as(target)
    _, card = load_exported(target)
    assert card["method"] == "cup" and f"intensity = {card['value']:g}" in heading
