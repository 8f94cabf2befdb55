"""Take the README's screenshots of ``aid2e report`` and ``aid2e dashboard`` (docs/report.png,
docs/dashboard.png) from a real run of the dRICH-shaped example campaign on local cores.

    .venv/bin/python scripts/screenshots.py [--out docs]

Needs the headless browser (``bash scripts/services/browser.sh``). The campaign runs in a
temporary copy of examples/drich/; the dashboard is captured while it runs (some trials done,
some in flight), the report after it ended. Each picture is the top of the page, as a reader
first sees it.
"""

from __future__ import annotations

import argparse
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOUND = 600.0


def aid2e(*args: str) -> list[str]:
    return [sys.executable, "-m", "aid2e", *args]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: not within {BOUND:g} s: {what}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go (default: docs/)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from aid2e.testing.browser import Browser

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "drich"
        shutil.copytree(ROOT / "examples" / "drich", folder)
        where = folder / "aid2e_jobs" / "drich-toy"
        controller = subprocess.Popen(aid2e("run", "campaign.yaml"), cwd=folder, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        wait_until(lambda: (where / "trials.json").exists(), "the campaign's first save")
        dashboard = subprocess.Popen(aid2e("dashboard", str(where), "--port", "0", "--refresh", "1"),
                                     stdout=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([dashboard.stdout], [], [], BOUND)
            if not ready:
                raise SystemExit("screenshots: the dashboard printed nothing")
            url = dashboard.stdout.readline().split(": ", 1)[1].split(" ")[0]
            with Browser(width=1400, height=1500) as browser:
                browser.open(url)

                def halfway(b: Browser) -> bool:
                    text = b.text("#counts") if b.count("#counts b") else ""
                    done = int(text.split("completed: ")[1].split()[0]) if "completed: " in text else 0
                    return done >= 5 and "running: 0" not in text

                browser.wait_for(halfway, timeout=BOUND)
                browser.driver.save_screenshot(str(out / "dashboard.png"))
            if controller.wait(timeout=BOUND) != 0:
                raise SystemExit("screenshots: the campaign failed")
        finally:
            dashboard.send_signal(signal.SIGINT)
            dashboard.wait(timeout=60)
            if controller.poll() is None:
                controller.kill()
        report = where / "report.html"
        subprocess.run(aid2e("report", str(where), "-o", str(report)), check=True, stdout=subprocess.DEVNULL)
        with Browser(width=1400, height=1500) as browser:
            browser.open(report)
            browser.wait_for("body[data-drawn]")
            browser.driver.save_screenshot(str(out / "report.png"))
            errors = browser.console_errors()
    if errors:
        raise SystemExit(f"screenshots: the report logged console errors: {errors}")
    print(f"wrote {out / 'report.png'} and {out / 'dashboard.png'}")


if __name__ == "__main__":
    main()
