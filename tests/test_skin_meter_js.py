"""The skin meter's JavaScript (smartmirror/ui/skin_meter/skin_meter_core.js) in a real browser, against the
Python it must agree with: on a real face frame (PhysRecorder, MIT) the frame it tags carries the mean colour that
:func:`smartmirror.vitals.signal.polygons_mean_rgb` measures inside the same mask, and its bits are
:func:`smartmirror.ui.frame_tag.tag_bits`'s. Served from 127.0.0.1 (WebCodecs needs a secure context)."""

from __future__ import annotations

import base64
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.frames import read_video_packets
from smartmirror.ui.frame_tag import split_frame_tag, tag_bits
from smartmirror.ui.skin_meter import FRONTEND, SkinMeterMasks, meter_settings
from smartmirror.vitals.signal import polygons_mean_rgb

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CLIP = Path(__file__).parent / "data" / "physrecorder_v01_15fps.mkv"
PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<script src="skin_meter_core.js"></script></body></html>"""


@pytest.fixture(scope="module")
def meter_page(tmp_path_factory):
    """A loopback page with the meter's core script and a real face frame (frame.png), and the frame itself."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("meter_page")
    (folder / "index.html").write_text(PAGE)
    (folder / "skin_meter_core.js").write_bytes((FRONTEND / "skin_meter_core.js").read_bytes())
    frame = next(iter(read_video_packets(CLIP))).image
    cv2.imwrite(str(folder / "frame.png"), frame)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--headless", "--disable-gpu"])
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
    yield page, frame
    browser.close()
    playwright.stop()
    server.shutdown()


def test_the_javascript_tag_bits_are_the_python_ones(meter_page):
    page, _ = meter_page
    for counter, version, rgb in ((0, 0, None), (65535, 255, [255.99, 0.0, 128.5]), (4660, 17, [141.0625, 99.9, 88.3])):
        bits = page.evaluate("([c, v, rgb]) => SmartMirrorMeterCore.createMeter({}).tagBits(c, v, rgb)",
                             [counter, version, rgb])
        expected = tag_bits(counter, version, None if rgb is None else np.array(rgb))
        assert bits == expected[:len(bits)] and not any(expected[len(bits):])


def test_the_javascript_meter_measures_the_mask_as_python_does_and_tags_the_frame(meter_page):
    page, frame = meter_page
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(frame)
    assert face is not None
    mask = SkinMeterMasks().update(face.landmarks_px[:, :2], frame.shape[:2])
    tagged_png = page.evaluate("""async ([mask, settings]) => {
        const bitmap = await createImageBitmap(await (await fetch("frame.png")).blob());
        const source = new OffscreenCanvas(bitmap.width, bitmap.height);
        source.getContext("2d").drawImage(bitmap, 0, 0);
        const meter = SmartMirrorMeterCore.createMeter({ OffscreenCanvas, VideoFrame });
        meter.setSettings(settings);
        meter.setMask(mask);
        const raw = new VideoFrame(source, { timestamp: 0 });
        const tagged = meter.tagFrame(raw);
        raw.close();
        const out = new OffscreenCanvas(tagged.displayWidth, tagged.displayHeight);
        out.getContext("2d").drawImage(tagged, 0, 0);
        tagged.close();
        const bytes = new Uint8Array(await (await out.convertToBlob({ type: "image/png" })).arrayBuffer());
        let text = "";
        for (const byte of bytes) text += String.fromCharCode(byte);
        return btoa(text);
    }""", [mask.args(), meter_settings()])
    image = cv2.imdecode(np.frombuffer(base64.b64decode(tagged_png), np.uint8), cv2.IMREAD_COLOR)
    picture, tag = split_frame_tag(image)
    assert tag is not None and tag.counter == 0 and tag.mask_version == mask.version
    np.testing.assert_array_equal(picture, frame)                      # the picture itself passes unchanged
    python = polygons_mean_rgb(frame, (mask.outline,), mask.holes).rgb
    assert np.abs(tag.skin_rgb - python).max() < 0.1, (tag.skin_rgb, python)  # anti-aliased edges differ a little
