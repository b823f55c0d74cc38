"""Make the README's picture of the browser viewer: a backend with the demo scene, the page in headless Chromium,
the camera turned and lifted a little with the coverage overlay on, the whole window saved as a PNG.

    python tests/viewer/viewer_screenshot.py docs/viewer.png [--plain /tmp/plain.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import CHROMIUM_FLAGS, chromium_paths  # noqa: E402
from viewer_util import viewer_backend  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--plain", type=Path, help="also save the view straight ahead, no overlay")
    parser.add_argument("--store", type=Path, help="scene store (default: a temporary one with the demo scene)")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from starbridge.scenes.store import SceneStore

    found = chromium_paths()
    if isinstance(found, str):
        raise SystemExit(found)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / "scenes"
        SceneStore(store).ensure_demo()
        backend = viewer_backend(store, default_width=512, default_height=288)
        options = webdriver.ChromeOptions()
        options.binary_location = found[0]
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp}/profile")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
        try:
            driver.get(backend.viewer.url)

            def settled(extra: str = "true") -> None:
                start = driver.execute_script("return window.viewer ? viewer.state.framesDrawn : 0")
                WebDriverWait(driver, 120, poll_frequency=0.05).until(
                    lambda d: d.execute_script(
                        f"return viewer.state.status === 'live' && viewer.state.framesDrawn > {start + 8} && ({extra})"
                    )
                )

            settled()
            driver.execute_script("document.getElementById('play').click()")  # pause: a still instant
            if args.plain:
                settled()
                driver.save_screenshot(str(args.plain))
            driver.execute_script(
                "viewer.camera.yaw = 0.9; viewer.camera.pitch = 0.1; viewer.camera.position = [0.4, 0.3, 0.6];"
                "document.getElementById('coverage').click();"
            )
            settled("viewer.view.observedShare !== null && viewer.view.observedShare < 1")
            time.sleep(0.5)  # let the readout's fps window fill before the picture (a picture, not a test)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
            backend.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
