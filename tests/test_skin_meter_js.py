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

import av
import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.frames import read_video_packets
from smartmirror.ui.frame_tag import split_frame_tag, strip_rows, tag_bits
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


TAG_FRAME_JS = """async ([format, width, height, fullRange, data, mask, settings]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const init = { format, codedWidth: width, codedHeight: height, timestamp: 0 };
    if (fullRange) {
        init.colorSpace = { matrix: "smpte170m", primaries: "smpte170m", transfer: "smpte170m", fullRange: true };
    }
    const raw = new VideoFrame(bytes, init);
    const meter = SmartMirrorMeterCore.createMeter({ OffscreenCanvas, VideoFrame });
    meter.setSettings(settings);
    meter.setMask(mask);
    const tagged = await meter.tagFrame(raw);
    raw.close();
    const out = new Uint8Array(tagged.allocationSize());
    const layout = await tagged.copyTo(out);
    const result = { format: tagged.format, width: tagged.codedWidth, height: tagged.codedHeight, layout,
                     colorSpace: tagged.colorSpace.toJSON() };
    tagged.close();
    let text = "";
    for (let i = 0; i < out.length; i += 0x8000) text += String.fromCharCode(...out.subarray(i, i + 0x8000));
    return { ...result, data: btoa(text) };
}"""


def _i420_planes(yuv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V of an OpenCV-layout I420 array ((3/2 height, width))."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.reshape(-1)
    y = flat[:height * width].reshape(height, width)
    u = flat[height * width:height * width * 5 // 4].reshape(height // 2, width // 2)
    v = flat[height * width * 5 // 4:].reshape(height // 2, width // 2)
    return y, u, v


def _tag_in_page(page, format_: str, width: int, height: int, data: bytes, mask, *, full_range: bool = False):
    """The meter's tagFrame on a frame of these bytes: the tagged frame as an OpenCV-layout I420 array."""
    out = page.evaluate(TAG_FRAME_JS, [format_, width, height, full_range, base64.b64encode(data).decode(),
                                       mask.args(), meter_settings()])
    assert out["format"] == "I420" and out["width"] == width
    assert out["colorSpace"] == {"matrix": "smpte170m", "primaries": "smpte170m", "transfer": "smpte170m",
                                 "fullRange": False}
    raw = np.frombuffer(base64.b64decode(out["data"]), np.uint8)
    frame_height = out["height"]
    offsets = [plane["offset"] for plane in out["layout"]]
    strides = [plane["stride"] for plane in out["layout"]]
    sizes = [(frame_height, width), (frame_height // 2, width // 2), (frame_height // 2, width // 2)]
    planes = [raw[o:o + s * rows].reshape(rows, s)[:, :columns]
              for o, s, (rows, columns) in zip(offsets, strides, sizes, strict=True)]
    return np.concatenate([plane.reshape(-1) for plane in planes]).reshape(-1, width)


@pytest.fixture(scope="module")
def face_mask(meter_page):
    """The clip's first frame as I420 bytes (as the camera sends it), and the skin mask of its face."""
    with av.open(str(CLIP)) as container:
        yuv = next(container.decode(video=0)).to_ndarray(format="yuv420p")
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
    assert face is not None
    return yuv, SkinMeterMasks().update(face.landmarks_px[:, :2], (yuv.shape[0] * 2 // 3, yuv.shape[1]))


def test_the_javascript_meter_passes_the_cameras_i420_through_and_measures_the_mask_as_python_does(
        meter_page, face_mask):
    page, _ = meter_page
    yuv, mask = face_mask
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    tagged = _tag_in_page(page, "I420", width, height, yuv.tobytes(), mask)
    rows = strip_rows(height)
    assert tagged.shape == ((height + rows) * 3 // 2, width)
    for sent, received in zip(_i420_planes(yuv), _i420_planes(tagged), strict=True):
        np.testing.assert_array_equal(received[:sent.shape[0]], sent)  # the camera's bytes, not a canvas's colours
    image = cv2.cvtColor(tagged, cv2.COLOR_YUV2BGR_I420)  # as the app decodes it (ui.session.received_bgr)
    picture, tag = split_frame_tag(image)
    assert tag is not None and tag.counter == 0 and tag.mask_version == mask.version
    np.testing.assert_array_equal(picture, cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
    python = polygons_mean_rgb(picture, (mask.outline,), mask.holes).rgb
    assert np.abs(tag.skin_rgb - python).max() < 0.1, (tag.skin_rgb, python)  # anti-aliased edges differ a little


def test_nv12_full_range_and_rgba_cameras_become_the_same_studio_range_i420(meter_page, face_mask):
    page, _ = meter_page
    yuv, mask = face_mask
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    y, u, v = _i420_planes(yuv)
    reference = _tag_in_page(page, "I420", width, height, yuv.tobytes(), mask)

    nv12 = np.concatenate([y.reshape(-1), np.stack([u, v], axis=-1).reshape(-1)])
    np.testing.assert_array_equal(_tag_in_page(page, "NV12", width, height, nv12.tobytes(), mask), reference)

    def full(plane, studio_low, studio_span, centre):  # studio range -> full range, as an MJPEG camera sends it
        scaled = (plane.astype(float) - studio_low) * 255 / studio_span + centre
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    full_range = np.concatenate([full(y, 16, 219, 0).reshape(-1), full(u, 128, 224, 128).reshape(-1),
                                 full(v, 128, 224, 128).reshape(-1)])
    from_full = _tag_in_page(page, "I420", width, height, full_range.tobytes(), mask, full_range=True)
    assert np.abs(from_full.astype(int) - reference).max() <= 1

    bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    from_rgba = cv2.cvtColor(_tag_in_page(page, "RGBA", width, height, rgba.tobytes(), mask), cv2.COLOR_YUV2BGR_I420)
    picture, tag = split_frame_tag(from_rgba)
    assert tag is not None and np.all(np.isfinite(tag.skin_rgb))
    difference = np.abs(picture.astype(int) - bgr)
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 6, (difference.mean(), difference.max())


def test_a_camera_format_the_meter_cannot_read_passes_untagged_and_is_counted(meter_page, face_mask):
    """An I444 camera (no reader for it): the stream goes on with the frame as it came, the error is reported."""
    page, _ = meter_page
    yuv, mask = face_mask
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    i444 = np.concatenate([_i420_planes(yuv)[0].reshape(-1), np.full(2 * height * width, 128, np.uint8)])
    out = page.evaluate("""async ([width, height, data, mask]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const raw = new VideoFrame(bytes, { format: "I444", codedWidth: width, codedHeight: height, timestamp: 0 });
        const meter = SmartMirrorMeterCore.createMeter({ OffscreenCanvas, VideoFrame });
        meter.setMask(mask);
        const report = { status: "", errors: 0 };
        const sent = [];
        await meter.transformer(report).transform(raw, { enqueue: (frame) => sent.push(frame) });
        const result = { count: sent.length, same: sent[0] === raw, format: sent[0].format, report };
        sent.forEach((frame) => frame.close());
        return result;
    }""", [width, height, base64.b64encode(i444.tobytes()).decode(), mask.args()])
    assert out["count"] == 1 and out["same"] and out["format"] == "I444"
    assert out["report"]["errors"] == 1 and "unsupported camera pixel format I444" in out["report"]["status"]
