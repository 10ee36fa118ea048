"""The browser console in a real Chromium (Playwright): import a corpus file, build a
dataset, train and watch the curve grow, cancel, resume, generate; and a reader's
token that can look but not start. Screenshots of each panel go to the test's
tmp directory (and, with TUNIXRT_SCREENSHOTS=DIR, to DIR)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_restarts import _kill, small_run
from test_security import TOKENS

from conftest import TRACES_JSONL, ServerProcess

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, sync_playwright

# Debian's chromium: Playwright cannot download its own browsers here.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium: `apt-get install chromium` (make install does it where it can)",
)
SLOW = 240_000  # ms: a busy 2-core machine compiling a model


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI containers).
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _page(browser: Browser, url: str, token: str) -> Page:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    # What the token dialog stores, for the tab only.
    context.add_init_script(f"sessionStorage.setItem('tunixrt.token', {token!r})")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return page


def _shots(tmp_path: Path) -> Callable[[Page, str], None]:
    out = [tmp_path / "screenshots"]
    if extra := os.environ.get("TUNIXRT_SCREENSHOTS"):
        out.append(Path(extra))

    def shot(page: Page, name: str) -> None:
        for d in out:
            d.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(d / f"{name}.png"), full_page=True)

    return shot


def _points(page: Page) -> int:
    return int(page.get_by_test_id("run-chart").get_attribute("data-points") or 0)


def test_console_journey(
    server_factory: Callable[..., ServerProcess],
    browser: Browser,
    tmp_path: Path,
) -> None:
    server = server_factory("--web-address", "127.0.0.1:0", env={"TUNIXRT_TOKENS": TOKENS})
    shot = _shots(tmp_path)

    # No token yet: the page asks for one.
    first = browser.new_page()
    first.goto(server.web_url)
    first.get_by_test_id("token-dialog").locator("input").fill("w-secret")
    first.get_by_test_id("token-dialog").locator("button").click()
    first.wait_for_load_state()
    page = first
    page.get_by_test_id("server-info").wait_for()
    assert "alice (writer)" in page.get_by_test_id("who").inner_text()
    shot(page, "server")

    # Import a file of the corpus, and see a bad line named by its line number.
    corpus = tmp_path / "corpus-part.jsonl"
    corpus.write_bytes(b"".join(TRACES_JSONL.read_bytes().splitlines(keepends=True)[:120]))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(corpus.read_bytes().splitlines(keepends=True)[0] + b"\n{oops\n")
    page.get_by_test_id("tab-traces").click()
    page.get_by_test_id("import-file").set_input_files(str(bad))
    page.get_by_test_id("import-button").click()
    assert "line 3" in page.get_by_test_id("import-result").locator(".error").inner_text()
    page.get_by_test_id("import-file").set_input_files(str(corpus))
    page.get_by_test_id("import-button").click()
    page.get_by_text("120 traces stored").wait_for()
    assert server.count("traces") == 120
    page.get_by_test_id("traces-table").locator("a").first.click()
    page.get_by_test_id("trace-detail").locator("h3").wait_for()
    shot(page, "traces")

    page.get_by_test_id("tab-generate").click()
    page.get_by_test_id("generate-traces").click()
    page.get_by_test_id("generate-table").wait_for()
    shot(page, "generate")

    # Build a dataset, export it with its checksum checked in the page.
    page.get_by_test_id("tab-datasets").click()
    page.get_by_test_id("build-button").click()
    page.get_by_text("built datasets/console-v1").wait_for()
    page.get_by_test_id("datasets-table").locator("a", has_text="console-v1").click()
    page.locator("button", has_text="Export JSONL").click()
    assert "checksum verified" in page.get_by_test_id("export-checksum").inner_text()
    page.locator("button", has_text="Generate manifest").click()
    page.get_by_test_id("manifest").filter(has_text="dataset").wait_for()
    shot(page, "datasets")

    # Start a short run and watch the curve gain points while it trains.
    page.get_by_test_id("tab-runs").click()
    form = page.locator(".form")
    form.locator("[name=dataset]").fill("datasets/console-v1")
    form.locator("[name=max_steps]").fill("40")
    form.locator("[name=max_seq_len]").fill("128")
    form.locator("[name=eval_every_steps]").fill("10")
    form.locator("[name=eval_examples]").fill("4")
    form.locator("[name=checkpoint_every_steps]").fill("5")
    page.get_by_test_id("start-run").click()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=run-chart]')?.dataset.points) >= 2",
        timeout=SLOW,
    )
    seen = _points(page)
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=run-chart]')?.dataset.points) > {seen}",
        timeout=SLOW,
    )
    shot(page, "run-training")
    page.get_by_test_id("cancel-run").click()
    page.get_by_test_id("run-state").filter(has_text="CANCELLED").wait_for(timeout=SLOW)
    page.get_by_test_id("resume-run").click()
    page.get_by_test_id("run-state").filter(has_text="SUCCEEDED").wait_for(timeout=SLOW)
    assert _points(page) >= 40  # the whole run's steps, replayed and continued
    page.get_by_test_id("generate-prompt").fill("What is 2 + 2?")
    page.get_by_test_id("generate-button").click()
    page.get_by_test_id("generate-answer").filter(has_text="answer:").wait_for(timeout=SLOW)
    shot(page, "run")

    # A reader sees everything and starts nothing: the buttons say so.
    reader = _page(browser, server.web_url + "#runs", "r-secret")
    reader.get_by_test_id("runs-table").wait_for()
    assert "read only" in reader.get_by_test_id("who").inner_text()
    start = reader.get_by_test_id("start-run")
    assert start.is_disabled() and "reader" in (start.get_attribute("title") or "")
    reader.get_by_test_id("runs-table").locator("a").first.click()
    assert reader.get_by_test_id("cancel-run").is_disabled()
    shot(reader, "reader")


def test_a_run_page_rides_out_a_server_restart(
    server_factory: Callable[..., ServerProcess], browser: Browser, tmp_path: Path
) -> None:
    """The page's stream breaks with the server (SIGKILL) and reconnects to its
    restart on the same ports after the last event it drew: every step once."""
    data = tmp_path / "data"
    server = server_factory("--web-address", "127.0.0.1:0", data_dir=data)
    web = server.web_url.removeprefix("http://").rstrip("/")
    with server.client(timeout=60) as rt:
        run = small_run(rt)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(server.web_url + "#runs")
    page.get_by_test_id("runs-table").locator("a").first.click()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=run-chart]')?.dataset.points) >= 2",
        timeout=SLOW,
    )
    _kill(server)
    page.get_by_test_id("watch-status").filter(has_text="reconnecting").wait_for()
    again = server_factory("--address", server.address, "--web-address", web, data_dir=data)
    page.get_by_test_id("watch-status").filter(has_text="ended").wait_for(timeout=SLOW)
    with again.client() as rt:
        steps = sum(e.HasField("step_metrics") for e in rt.watch_training_run(run.name))
    assert _points(page) == steps > 2  # no gap, no repeat
