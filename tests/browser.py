"""Headless Chromium and a JupyterLab server for the browser tests (tests/test_browser.py).

Chromium and its driver are Debian packages (``apt-get install chromium chromium-driver``;
.ci/run installs them); selenium is pinned in requirements.txt. Where they are missing
the tests fail with that instruction: a browser test that silently skips proves nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "screenshots"  # ignored by git: for a person to look at
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000",
         # plotly's 3-D surface is WebGL: software rendering, as there is no GPU here
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader")
HOW_TO_GET = ("the browser tests need Chromium and its driver: on Debian or Ubuntu run "
              "`apt-get install -y chromium chromium-driver` (as root; .ci/run does it), elsewhere install "
              "Chrome or Chromium and chromedriver of the same version and put both on PATH; and "
              "`pip install -r requirements.txt` for selenium")


def find_browser() -> tuple[str, str]:
    """Paths of the browser and its driver, or an AssertionError that says how to get them."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        browser = None
    if not (browser and driver):
        raise AssertionError(HOW_TO_GET)
    return browser, driver


def start_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not try to download a driver
    return webdriver.Chrome(service=Service(driver), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """JupyterLab serving ``root`` on 127.0.0.1, a random free port, with a token."""

    def __init__(self, root: Path, log: Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        env = {**os.environ, "PYTHONPATH": str(root), "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
               "COURSE_NO_PROGRESS": "1"}
        env.pop("NBGRADER_EXECUTION", None)
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.open_browser=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
             "jupyterlab.NeverCheckForUpdate"]
            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI containers
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url("api/status"), timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"JupyterLab did not start in {timeout} s: {Path(self.log.name).read_text()[-2000:]}")

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
