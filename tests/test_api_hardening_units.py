"""Hardening, in process: image sizes from trusted headers, settings refused by name, Host names, the several-faces
rule, the upload sweep, the clip probe's resolution cap, and small faces in wide frames."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from image_bombs import png_bomb

from smartmirror.api.routes.errors import ApiError
from smartmirror.api.routes.media import decode_image, image_header_size, probe_video
from smartmirror.api.routes.middleware import host_allowed
from smartmirror.api.routes.uploads import UploadArea, sweep_stale_uploads
from smartmirror.api.settings import ApiSettings
from smartmirror.face_choice import FacesTally, choose_face
from smartmirror.frames import VideoError


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


def test_a_png_whose_header_pillow_cannot_read_is_refused_without_decoding():
    bomb = png_bomb(10_000, 10_000, bad_ancillary_crc=True)   # libpng would decode it: 10^8 pixels
    assert len(bomb) < 200_000
    assert image_header_size(bomb) == (10_000, 10_000)        # read from IHDR, whatever follows
    before = _peak_rss_mb()
    with pytest.raises(ApiError) as caught:
        decode_image(bomb, max_side_px=4096)
    assert (caught.value.status_code, caught.value.code) == (413, "image_too_large")
    assert _peak_rss_mb() - before < 50                        # OpenCV never saw it (+570 MB before)


@pytest.mark.parametrize("raw", [
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,                     # no IHDR
    png_bomb(64, 64)[:20],                                    # IHDR cut short
    b"\xff\xd8\xff\xda" + b"\x00" * 40,                      # a JPEG scan without a frame header
    b"GIF89a" + b"\x00" * 40,                                 # a format the API does not take
])
def test_images_without_a_readable_size_are_refused(raw):
    assert image_header_size(raw) is None
    with pytest.raises(ApiError) as caught:
        decode_image(raw, max_side_px=4096)
    assert (caught.value.status_code, caught.value.code) == (415, "not_an_image")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tiff"])
def test_header_sizes_of_the_accepted_formats(ext):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    raw = cv2.imencode(ext, image)[1].tobytes()
    assert image_header_size(raw) == (53, 37)
    assert decode_image(raw, max_side_px=4096).shape == (37, 53, 3)


def test_opencv_decoder_pixel_limit_is_capped_when_smartmirror_loads_first():
    code = (f"import smartmirror, cv2, numpy as np, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from image_bombs import png_bomb\n"
            "try:\n    cv2.imdecode(np.frombuffer(png_bomb(9000, 9000, bad_ancillary_crc=True), np.uint8), 1)\n"
            "    print('decoded')\nexcept cv2.error:\n    print('refused')\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "refused", out.stderr[-2000:]


# -- settings --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_api_key_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match="SMARTMIRROR_API_KEY is set but blank"):
        ApiSettings.from_env({"SMARTMIRROR_API_KEY": value})


def test_a_bad_pulse_method_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="SMARTMIRROR_PULSE_METHOD='telepathy' is not valid: Unknown pulse"):
        ApiSettings.from_env({"SMARTMIRROR_PULSE_METHOD": "telepathy"})


@pytest.mark.parametrize("env", [{"SMARTMIRROR_API_KEY": " "}, {"SMARTMIRROR_PULSE_METHOD": "telepathy"}])
def test_serve_stops_with_one_line_and_no_traceback(env):
    code = ("import sys; from smartmirror.cli.app import main; "
            "sys.argv = ['smartmirror', 'serve', '--port', '0']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and next(iter(env)) in out.stderr, out.stderr[-2000:]


def test_allowed_hosts_from_the_environment_and_the_host_header():
    settings = ApiSettings.from_env({"SMARTMIRROR_ALLOWED_HOSTS": "mirror.local, 192.168.1.5, [fe80::1]"})
    assert settings.allowed_hosts == ("mirror.local", "192.168.1.5", "fe80::1")
    with pytest.raises(ValueError, match="SMARTMIRROR_ALLOWED_HOSTS"):
        ApiSettings.from_env({"SMARTMIRROR_ALLOWED_HOSTS": "mirror.local:8000"})
    loopback = ApiSettings().allowed_hosts
    assert host_allowed("127.0.0.1:8000", loopback) and host_allowed("localhost", loopback)
    assert host_allowed("[::1]:8000", loopback) and host_allowed("LOCALHOST.:80", loopback)
    assert not host_allowed("evil.example:8000", loopback) and not host_allowed("127.0.0.1.evil.example", loopback)
    assert host_allowed("anything", ("*",))


# -- several faces: one rule -----------------------------------------------------------------------------------


def test_several_faces_measure_the_largest_and_say_so(astronaut_bgr, astronaut_face):
    from smartmirror.face import FaceTracker

    x, y, w, h = astronaut_face.bbox
    crop = astronaut_bgr[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2]
    small = cv2.resize(crop, (crop.shape[1] * 2 // 3, crop.shape[0] * 2 // 3))
    pair = np.full((crop.shape[0], crop.shape[1] + small.shape[1], 3), 90, np.uint8)
    pair[:, :crop.shape[1]] = crop
    pair[:small.shape[0], crop.shape[1]:] = small
    with FaceTracker(static_image_mode=True) as tracker:
        choice = choose_face(tracker.process(np.ascontiguousarray(pair)))
    assert choice.faces_seen == 2 and choice.warning["code"] == "several_faces"
    assert choice.face.bbox[0] < crop.shape[1] // 2                     # the larger (left) face is measured
    assert choose_face(None).faces_seen == 0 and choose_face(None).warning is None
    tally = FacesTally()
    for c in (choice, choose_face(None)):
        tally.add(c)
    summary = tally.summary()
    assert summary["max_faces_seen"] == 2 and summary["frames_with_several_faces"] == 1
    assert "largest face was measured" in summary["warning"]["message"]


@pytest.mark.parametrize(("frame_width", "crop_width"), [(1920, 300), (1280, 200), (1920, 240)])
def test_faces_narrower_than_a_tenth_of_a_wide_frame_are_found(astronaut_bgr, astronaut_face, frame_width,
                                                               crop_width):
    """Real pixels: the astronaut's face (~half the crop's width) on a wide grey frame, as FaceMesh's own
    short-range detector misses it (it found none of these before the full-range detector was added)."""
    from smartmirror.face import FaceTracker

    x, y, w, h = astronaut_face.bbox
    crop = astronaut_bgr[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2]
    crop = cv2.resize(crop, (crop_width, round(crop_width * crop.shape[0] / crop.shape[1])))
    height = frame_width * 9 // 16
    frame = np.full((height, frame_width, 3), 90, np.uint8)
    y0, x0 = height // 2 - crop.shape[0] // 2, frame_width // 4 - crop_width // 2
    frame[y0:y0 + crop.shape[0], x0:x0 + crop_width] = crop
    for static in (True, False):
        with FaceTracker(static_image_mode=static) as tracker:
            face = [tracker.process(frame) for _ in range(2)][-1]
        assert face is not None, (frame_width, crop_width, static)
        fx, fy, fw, fh = face.bbox
        assert fw < frame_width / 10 and x0 <= fx + fw / 2 <= x0 + crop_width
        assert y0 <= fy + fh / 2 <= y0 + crop.shape[0]


# -- uploads ---------------------------------------------------------------------------------------------------


def test_stale_upload_folders_are_swept_but_a_live_servers_are_kept(tmp_path):
    live = UploadArea.create(tmp_path)
    (live.new_request_folder() / "clip.mp4").write_bytes(b"live")
    dead_lock = os.open(tmp_path / "server-1-dead.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(dead_lock, fcntl.LOCK_EX)
    (tmp_path / "server-1-dead" / "upload-x").mkdir(parents=True)
    (tmp_path / "server-1-dead" / "upload-x" / "clip.mp4").write_bytes(b"left by a killed server")
    os.close(dead_lock)                                        # the killed process's lock is released
    assert sweep_stale_uploads(tmp_path) == 1
    assert not (tmp_path / "server-1-dead").exists() and not (tmp_path / "server-1-dead.lock").exists()
    assert live.folder.exists() and len(list(live.folder.iterdir())) == 1
    assert oct(live.folder.stat().st_mode & 0o777) == "0o700"
    live.close()
    assert list(tmp_path.iterdir()) == []


def test_clip_probe_refuses_resolution_from_the_container_before_decoding(tmp_path):
    path = tmp_path / "wide.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=gray:s=4000x300:r=5", "-t", "1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=120)
    with pytest.raises(VideoError) as caught:
        probe_video(path, max_seconds=120, max_side_px=3840)
    assert caught.value.code == "clip_too_large" and "4000x300" in caught.value.message
    assert probe_video(path, max_seconds=120, max_side_px=4000) == pytest.approx(1.0, abs=0.25)
