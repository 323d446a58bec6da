"""Headless Chromium driven by selenium, for the end-to-end tests.

The browser is Debian's ``chromium`` with its matching ``chromedriver`` (packages
``chromium`` and ``chromium-driver``; ``make browser`` installs them as root). selenium is
given both paths, so it never tries to download a browser or a driver.

Without them the browser tests fail, so that CI cannot pass by silently skipping them;
``ALLOW_NO_BROWSER=1`` turns that failure into a skip on a machine without a browser.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_NAMES = ("chromium", "chromium-browser")
ALLOW_MISSING_VARIABLE = "ALLOW_NO_BROWSER"
WINDOW_SIZE = (1200, 900)
#: Headless flags that work as root in a container: no sandbox (it needs user namespaces),
#: no GPU, and none of the background connections to Google's services, which a closed
#: network refuses, slowly.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--lang=en-US",
)


def find_browser() -> tuple[str, str] | None:
    """Paths of chromium and chromedriver, or ``None`` when either is missing."""
    chromium = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    driver = shutil.which("chromedriver")
    return None if chromium is None or driver is None else (chromium, driver)


def require_browser() -> tuple[str, str]:
    found = find_browser()
    if found is not None:
        return found
    message = (
        "chromium and chromedriver are needed for the browser tests: run `make browser` "
        "as root (Debian packages chromium and chromium-driver)"
    )
    if os.environ.get(ALLOW_MISSING_VARIABLE) == "1":
        pytest.skip(f"{message}; skipped because {ALLOW_MISSING_VARIABLE}=1")
    pytest.fail(f"{message}, or set {ALLOW_MISSING_VARIABLE}=1 to skip them")


@contextmanager
def chromium(timezone: str | None = None) -> Iterator[webdriver.Chrome]:
    """A fresh headless browser with an empty profile, closed afterwards."""
    binary, driver_path = require_browser()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument("--window-size={},{}".format(*WINDOW_SIZE))
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            driver.set_page_load_timeout(30)
            if timezone is not None:
                driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone})
            yield driver
        finally:
            driver.quit()
