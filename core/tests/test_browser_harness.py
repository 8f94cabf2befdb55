"""The headless-browser harness (aid2e.testing.browser) against the real Chromium: pages drawn by
JavaScript, console errors that must be seen, a live page served over HTTP, screenshots, and when
a missing browser skips a test and when it fails it. Every wait is bounded and waits for a
condition, never for time."""

from __future__ import annotations

import http.server
import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aid2e.testing.browser import Browser, BrowserPaths, find_browser, require_browser, start_browser

NO_FAVICON = '<link rel="icon" href="data:,">'  # no /favicon.ico request, hence no 404 in the console
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'>{NO_FAVICON}</head><body>{body}</body></html>")
    return path


SVG_PAGE = """
<div id="chart"></div>
<script>
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("id", "plot");
  svg.setAttribute("width", "300");
  svg.setAttribute("height", "200");
  [[40, 150], [120, 80], [220, 40]].forEach(([x, y], i) => {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", 8);
    dot.setAttribute("class", "trial");
    svg.appendChild(dot);
  });
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", 10); label.setAttribute("y", 20); label.textContent = "3 trials";
  svg.appendChild(label);
  document.getElementById("chart").appendChild(svg);
</script>
"""


def test_svg_drawn_by_javascript_and_a_clean_console(browser, tmp_path):
    browser.open(page(tmp_path, SVG_PAGE))
    circles = browser.wait_for("svg#plot circle.trial", timeout=30)
    assert len(circles) == 3
    assert browser.count("svg#plot circle.trial") == 3
    assert browser.text("svg#plot text") == "3 trials"
    assert browser.console_errors() == []


def test_console_error_is_reported(browser, tmp_path):
    browser.open(page(tmp_path, '<script>console.log("fine"); console.error("boom");</script><p>x</p>'))
    errors = browser.wait_for(lambda b: b.console_errors(), timeout=30)
    assert len(errors) == 1 and "boom" in errors[0], errors
    # everything else is still recorded, but is not an error
    assert any("fine" in entry["message"] and entry["level"] == "INFO" for entry in browser.console())


def test_uncaught_exception_is_reported(browser, tmp_path):
    browser.open(page(tmp_path, '<script>throw new Error("kaboom");</script><p>x</p>'))
    errors = browser.wait_for(lambda b: b.console_errors(), timeout=30)
    assert any("Uncaught Error: kaboom" in message for message in errors), errors


def test_failed_resource_is_an_error_too(browser, tmp_path):
    browser.open(page(tmp_path, '<img src="missing.png"><p>x</p>'))
    errors = browser.wait_for(lambda b: b.console_errors(), timeout=30)
    assert any("missing.png" in message for message in errors), errors


class Counter:
    """A live dashboard in miniature: / is a page that fetches /count every 200 ms and shows it."""

    PAGE = f"""<!doctype html><html><head>{NO_FAVICON}</head><body>
<p>count: <span id="count">?</span></p>
<script>
  async function poll() {{
    const response = await fetch("/count", {{cache: "no-store"}});
    document.getElementById("count").textContent = (await response.json()).count;
  }}
  poll(); setInterval(poll, 200);
</script></body></html>"""

    def __init__(self) -> None:
        self.value = 1
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/":
                    body, kind = counter.PAGE.encode(), "text/html; charset=utf-8"
                elif self.path == "/count":
                    body, kind = json.dumps({"count": counter.value}).encode(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: pytest shows the test's own output only
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def counter():
    served = Counter()
    yield served
    served.close()


def test_live_page_sees_new_values(browser, counter):
    browser.open(counter.url)
    browser.wait_for(lambda b: b.text("#count") == "1", timeout=30)
    counter.value = 2
    browser.wait_for(lambda b: b.text("#count") == "2", timeout=30)
    counter.value = 41
    browser.wait_for(lambda b: b.text("#count") == "41", timeout=30)
    assert browser.url == counter.url
    assert browser.console_errors() == []


def test_wait_for_gives_up_and_says_what_it_waited_for(browser, tmp_path):
    browser.open(page(tmp_path, '<script>console.error("why")</script><p>x</p>'))
    browser.wait_for(lambda b: b.console_errors(), timeout=30)
    with pytest.raises(TimeoutError, match=r"waited 0\.3 s for an element matching '#never'.*why"):
        browser.wait_for("#never", timeout=0.3)
    with pytest.raises(LookupError, match="#never"):
        browser.text("#never")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot_is_a_png_of_the_whole_page(browser, tmp_path):
    browser.open(page(tmp_path, '<div style="height: 3000px; background: linear-gradient(red, blue)"></div>'
                                '<p id="end">end</p>'))
    browser.wait_for("#end")
    shot = browser.screenshot(tmp_path / "page.png")
    data = shot.read_bytes()
    assert len(data) > 0 and data[:8] == PNG_MAGIC
    width, height = png_size(data)
    assert width > 0 and height >= 3000  # beyond the 1000-pixel window


def test_never_runs_selenium_manager(monkeypatch):
    """Both programs go to selenium by path: Selenium Manager (which downloads) is never run."""
    paths = require_browser()
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(self, *args):
        raise AssertionError(f"Selenium Manager was run: {args}")

    monkeypatch.setattr(SeleniumManager, "binary_paths", refuse)
    with Browser(paths) as browser:
        browser.open("data:text/html,<p id=hi>hello</p>")
        assert browser.text("#hi") == "hello"
        assert browser.startup_seconds > 0


def test_a_browser_that_does_not_start_names_the_fix(tmp_path):
    paths = require_browser()
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(RuntimeError, match="did not start.*scripts/services/browser.sh"):
        Browser(BrowserPaths(str(broken), paths.chromedriver))


# ---------------------------------------------------------------------- skip or fail, without a browser


@pytest.fixture
def no_browser_here(tmp_path, monkeypatch):
    """No chromium anywhere, no marker, nothing required."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("AID2E_BROWSER_MARKER", str(tmp_path / "no-marker.env"))
    for name in ("AID2E_CHROMIUM", "AID2E_CHROMEDRIVER", "AID2E_REQUIRE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_missing_browser_skips_where_not_promised(no_browser_here):
    assert find_browser()[0] is None
    with pytest.raises(pytest.skip.Exception, match="no chromium.*scripts/services/browser.sh"):
        require_browser()


def test_missing_browser_fails_where_required(no_browser_here, monkeypatch):
    monkeypatch.setenv("AID2E_REQUIRE", "slurm browser")
    with pytest.raises(pytest.fail.Exception, match="browser is required here"):
        require_browser()


def test_missing_browser_fails_where_browser_sh_set_it_up(no_browser_here, monkeypatch):
    marker = no_browser_here / "marker.env"
    marker.write_text("AID2E_BROWSER='ok'\nAID2E_CHROMIUM='/nonexistent/chromium'\n")
    monkeypatch.setenv("AID2E_BROWSER_MARKER", str(marker))
    with pytest.raises(pytest.fail.Exception, match="set up the browser here but it does not work: no chromium"):
        require_browser()


def test_broken_browser_recorded_by_browser_sh_fails(no_browser_here, monkeypatch):
    marker = no_browser_here / "marker.env"
    # as browser.sh quotes it
    marker.write_text("# browser.sh\nAID2E_BROWSER='chromium did not render a page (exit 1): it'\\''s bad'\n")
    monkeypatch.setenv("AID2E_BROWSER_MARKER", str(marker))
    with pytest.raises(pytest.fail.Exception, match="did not render a page \\(exit 1\\): it's bad"):
        start_browser()


def test_importing_the_harness_costs_nothing():
    code = ("import sys, aid2e.testing; before = set(sys.modules); import aid2e.testing.browser; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new & {'selenium', 'pytest', '_pytest'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
