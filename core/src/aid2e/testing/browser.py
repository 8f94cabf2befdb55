"""A real headless Chromium for tests that open an HTML report (a file) or a live dashboard
(``http://127.0.0.1:PORT``) and check what a user would see.

* :func:`require_browser` finds Debian's ``chromium`` and ``chromedriver`` (installed and checked by
  scripts/services/browser.sh) and skips the calling test without them, or fails it where the
  browser was promised (that script set it up here, or ``AID2E_REQUIRE`` names ``browser``);
* :class:`Browser` drives one headless Chromium through chromedriver with selenium: open a page,
  wait (bounded) for a condition, count and read elements, collect the console's errors, take a
  screenshot. Selenium Manager is never used: both programs are given by path, so nothing is
  downloaded;
* :func:`start_browser` is what the ``browser`` fixture of ``aid2e.testing.fixtures`` uses: a
  started :class:`Browser`, or the test skipped/failed with the reason.

selenium and pytest are imported only by the functions that need them: importing this module
costs nothing.
"""

from __future__ import annotations

import base64
import logging
import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)

#: Where scripts/services/browser.sh records that it set the browser up (``AID2E_BROWSER=ok`` or
#: why it does not work, ``AID2E_CHROMIUM=...``, ``AID2E_CHROMEDRIVER=...``); ``$AID2E_BROWSER_MARKER``
#: overrides it.
DEFAULT_MARKER = "/run/aid2e-browser.env"
SETUP_HINT = "run scripts/services/browser.sh as root to install chromium and chromium-driver"
#: The flags every Browser starts Chromium with: headless, as root in a container (no sandbox, no
#: GPU, /dev/shm may be small), and no network of its own (no updates, no first-run page).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
)


@dataclass(frozen=True)
class BrowserPaths:
    """The two programs a :class:`Browser` runs."""

    chromium: str
    chromedriver: str


def marker_path() -> Path:
    return Path(os.environ.get("AID2E_BROWSER_MARKER", DEFAULT_MARKER))


def browser_facts() -> dict[str, str]:
    """What scripts/services/browser.sh recorded (``AID2E_BROWSER``, ``AID2E_CHROMIUM``, ...);
    ``{}`` where it did not set the browser up."""
    try:
        text = marker_path().read_text()
    except OSError:
        return {}
    return dict(word.split("=", 1) for word in shlex.split(text, comments=True) if "=" in word)


def find_browser() -> tuple[BrowserPaths | None, str]:
    """``(paths, "")`` if chromium, chromedriver and selenium are all here, else ``(None, why not)``.

    The programs are the ones browser.sh recorded, else ``$AID2E_CHROMIUM``/``$AID2E_CHROMEDRIVER``,
    else ``chromium``/``chromedriver`` on PATH. Nothing is started."""
    facts = browser_facts()
    status = facts.get("AID2E_BROWSER", "ok")
    if status != "ok":
        return None, f"scripts/services/browser.sh found that the browser does not work: {status}"
    found = {}
    for name, key in (("chromium", "AID2E_CHROMIUM"), ("chromedriver", "AID2E_CHROMEDRIVER")):
        program = facts.get(key) or os.environ.get(key) or shutil.which(name)
        if not program or not os.access(program, os.X_OK):
            return None, f"no {name} ({program or 'not on PATH'}); {SETUP_HINT}"
        found[name] = program
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "the selenium package is not installed: pip install selenium (scripts/setup.sh --test does)"
    return BrowserPaths(**found), ""


def _unavailable(problem: str) -> NoReturn:
    """Fail the calling test where the browser was promised, skip it elsewhere."""
    import pytest

    from aid2e.testing.requirements import require

    if marker_path().exists():
        pytest.fail(f"scripts/services/browser.sh set up the browser here but it does not work: {problem}")
    require("browser", False, problem)


def require_browser() -> BrowserPaths:
    """The browser's programs (:func:`find_browser`); without them the calling test fails where the
    browser was promised (browser.sh set it up, or ``AID2E_REQUIRE`` names browser) and skips
    elsewhere."""
    paths, problem = find_browser()
    if paths is None:
        _unavailable(problem)
    return paths


class Browser:
    """One headless Chromium, driven through chromedriver; use it ``with Browser() as b:`` or call
    :meth:`quit`.

    ``paths`` default to :func:`find_browser`'s; ``timeout`` bounds page loads, scripts and
    :meth:`wait_for`. The browser console is recorded from the start (:meth:`console`,
    :meth:`console_errors`). ``driver`` is selenium's WebDriver, for anything not offered here.
    """

    def __init__(self, paths: BrowserPaths | None = None, *, width: int = 1400, height: int = 1000,
                 timeout: float = 30.0, arguments: Sequence[str] = ()) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        if paths is None:
            paths, problem = find_browser()
            if paths is None:
                raise RuntimeError(problem)
        # Both programs are given by path, so selenium never runs Selenium Manager (which would
        # download a browser or driver); SE_OFFLINE=true keeps it offline should anything call it.
        os.environ.setdefault("SE_OFFLINE", "true")
        options = webdriver.ChromeOptions()
        options.binary_location = paths.chromium
        for argument in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", *arguments):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.paths = paths
        self.timeout = timeout
        self._console: list[dict[str, Any]] = []
        started = time.monotonic()
        try:
            self.driver = webdriver.Chrome(service=Service(executable_path=paths.chromedriver), options=options)
        except Exception as exc:
            raise RuntimeError(f"headless {paths.chromium} did not start through {paths.chromedriver}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}; "
                               f"{SETUP_HINT}") from exc
        self.startup_seconds = time.monotonic() - started
        self.driver.set_page_load_timeout(timeout)
        self.driver.set_script_timeout(timeout)
        log.debug("headless %s %s started in %.2f s", paths.chromium,
                  self.driver.capabilities.get("browserVersion", ""), self.startup_seconds)

    # ------------------------------------------------------------------ pages
    def open(self, url: str | os.PathLike[str]) -> Browser:
        """Load ``url`` (``http://...``, ``file://...``, or a path to a local file) and wait until
        it has loaded."""
        if not str(url).startswith(("http://", "https://", "file://", "data:", "about:")):
            url = Path(url).resolve().as_uri()
        self.driver.get(str(url))
        return self

    @property
    def url(self) -> str:
        return self.driver.current_url

    def wait_for(self, condition: str | Callable[[Browser], Any], timeout: float | None = None) -> Any:
        """Wait until ``condition`` holds, polling, at most ``timeout`` seconds (the browser's
        ``timeout`` by default); raise ``TimeoutError`` (with the page's console errors) if it
        does not.

        ``condition`` is a CSS selector (holds when an element matches; returns the elements) or a
        callable taking this Browser (holds when it returns something true, which is returned; a
        ``LookupError`` from :meth:`text` counts as "not yet")."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        if isinstance(condition, str):
            def check(driver):
                return driver.find_elements(By.CSS_SELECTOR, condition)
            what = f"an element matching {condition!r}"
        else:
            def check(driver):
                return condition(self)
            what = f"{getattr(condition, '__name__', 'condition')} to hold"
        limit = self.timeout if timeout is None else timeout
        wait = WebDriverWait(self.driver, limit, poll_frequency=0.05,
                             ignored_exceptions=(LookupError, NoSuchElementException, StaleElementReferenceException))
        try:
            return wait.until(check)
        except TimeoutException:
            errors = self.console_errors()
            raise TimeoutError(f"waited {limit:g} s for {what} on {self.url}; console errors: "
                               f"{errors or 'none'}") from None

    def count(self, css: str) -> int:
        """How many elements match the CSS selector ``css`` now."""
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        """The rendered text of the first element matching ``css``; ``LookupError`` if none does."""
        from selenium.webdriver.common.by import By

        elements = self.driver.find_elements(By.CSS_SELECTOR, css)
        if not elements:
            raise LookupError(f"no element matches {css!r} on {self.url}")
        return elements[0].text

    def script(self, javascript: str, *args: Any) -> Any:
        """Run ``javascript`` in the page (``arguments[0]``... are ``args``) and return its
        ``return`` value."""
        return self.driver.execute_script(javascript, *args)

    # ------------------------------------------------------------------ console and pictures
    def console(self) -> list[dict[str, Any]]:
        """Every browser console entry since the start (``level``, ``message``, ``source``,
        ``timestamp``), oldest first."""
        self._console.extend(self.driver.get_log("browser"))
        return list(self._console)

    def console_errors(self) -> list[str]:
        """The messages of every SEVERE console entry since the start (``console.error``, uncaught
        exceptions, resources that failed to load), none left out."""
        return [entry["message"] for entry in self.console() if entry.get("level") == "SEVERE"]

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Write a PNG of the whole page (beyond the window where the page is longer) to ``path``;
        of the window only where Chromium cannot capture the full page."""
        path = Path(path)
        try:
            size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            })
            path.write_bytes(base64.b64decode(shot["data"]))
        except Exception as exc:
            log.debug("full-page screenshot failed (%s); taking the window only", exc)
            if not self.driver.save_screenshot(str(path)):
                raise RuntimeError(f"Chromium could not write a screenshot to {path}") from exc
        return path

    # ------------------------------------------------------------------ end
    def quit(self) -> None:
        """End the browser and chromedriver (again: nothing)."""
        driver, self.driver = getattr(self, "driver", None), None
        if driver is not None:
            driver.quit()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.quit()


def start_browser(**kwargs: Any) -> Browser:
    """A started :class:`Browser` (``kwargs`` as for it) for the calling test; where there is none
    or it does not start, the test fails if the browser was promised and skips otherwise."""
    paths = require_browser()
    try:
        return Browser(paths, **kwargs)
    except RuntimeError as exc:
        _unavailable(str(exc))
