"""Takes docs/dashboard.png, the README's picture of the course dashboard.

It opens the dashboard page that ``make demo`` wrote for the bundled samples
(``reports/<assignment>.html``) in headless Chromium, offline, as the browser tests do
(tests/browser.py), and saves the top of it: the score distribution and the graded cells.
Run from the repository root after ``make demo``:

    .venv/bin/python docs/dashboard_figure.py [ASSIGNMENT]    # default: optimizers
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import browser  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboard.png"
WIDTH, HEIGHT = 1400, 1450


def main(assignment: str = "optimizers") -> None:
    page = ROOT / "reports" / f"{assignment}.html"
    if not page.exists():
        raise SystemExit(f"{page} does not exist: run `make demo` (or `python -m course report`) first")
    with tempfile.TemporaryDirectory() as profile:
        driver = browser.start_browser(Path(profile))
        try:
            driver.set_window_size(WIDTH, HEIGHT)
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
                "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
            driver.get(page.as_uri())
            deadline = time.monotonic() + 30
            while not driver.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length")\
                    and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1)  # plotly's transitions
            driver.save_screenshot(str(OUT))
        finally:
            driver.quit()
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
