"""Fixtures of the viewer tests: a real headless Chromium (Debian's `chromium` through its `chromedriver`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Flags for a quiet, reproducible headless browser: no GPU, no network besides the page's, no first-run UI.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--window-size=1400,900",
)


def chromium_paths() -> tuple[str, str] | str:
    """(browser, driver) paths, or why the browser tests cannot run here."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return (
            "Debian's chromium and chromedriver are not installed "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A Selenium WebDriver on a fresh headless Chromium profile; downloads go to `browser.download_dir`."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    found = chromium_paths()
    if isinstance(found, str):
        pytest.skip(found)
    binary, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    downloads: Path = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.download_dir = downloads
    try:
        yield driver
    finally:
        driver.quit()
