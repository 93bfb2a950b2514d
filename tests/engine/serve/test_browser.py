"""A real browser: Debian's Chromium, headless, with a fake camera playing the bundled clip
(y4m, frame numbers stamped into the pixels), driven by Playwright over the DevTools protocol.
Opens the page, starts the camera, checks the try-on frames coming back (the garment area
differs from the camera frame of the same number) and the FPS figure on the page."""

import base64
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sample_media import read_sample_clip
from engine.serve.app import STATE, create_app
from tests.engine.serve.helpers import (
    ThreadedServer,
    garment_change,
    read_stamp,
    stamp,
    tiny_session_factory,
    write_y4m,
)

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (/usr/bin/chromium; apt-get install chromium)",
)

GRAB = """() => {
  const video = document.getElementById("remote");
  if (!video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
}"""


def _decode(data_url: str) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_browser_page_shows_try_on_and_fps(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    clip = [stamp(frame, n) for n, frame in enumerate(read_sample_clip(36))]
    camera = write_y4m(clip, tmp_path / "camera.y4m", fps=24)
    app = create_app(tiny_session_factory(tmp_path), model="tiny", backend="torch")
    args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--no-sandbox",
    ]
    with ThreadedServer(app) as server, sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
            args=args, timeout=60_000,
        )  # fmt: skip
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(server.url + "/")
            page.click("#start")
            page.wait_for_function(
                "() => document.getElementById('remote').videoWidth > 0", timeout=60_000
            )
            grabs = []
            deadline = time.monotonic() + 45
            while len(grabs) < 4 and time.monotonic() < deadline:
                data = page.evaluate(GRAB)
                image = _decode(data) if data else None
                number = None if image is None else read_stamp(image)
                if number is not None and number < len(clip):
                    grabs.append((number, image))
                page.wait_for_timeout(300)
            page.wait_for_function(
                "() => /^[0-9.]+$/.test(document.getElementById('fps').textContent)",
                timeout=30_000,
            )
            fps = float(page.text_content("#fps"))
            server_ms = page.text_content("#server-ms")
            sessions = server.call(lambda: app[STATE].sessions)
            page.click("#stop")
            for _ in range(100):
                if server.call(lambda: app[STATE].sessions) == 0:
                    break
                page.wait_for_timeout(100)
            sessions_after = server.call(lambda: app[STATE].sessions)
        finally:
            context.close()
    assert len(grabs) >= 3, "try-on frames with readable stamps came back to the page"
    for number, image in grabs:
        assert garment_change(image, clip[number]) > 20, "the garment area shows the garment"
    assert fps >= 0 and server_ms.replace(".", "").isdigit()
    assert sessions == 1 and sessions_after == 0
