"""Several faces, one rule, everywhere: the clip report, the live engine (and REST sessions, in test_api*.py)
measure the largest face and say that several were seen."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from smartmirror.frames import FramePacket
from smartmirror.live.engine import Engine
from smartmirror.report import _downscaled, analyze_video


@pytest.fixture(scope="module")
def two_faces_frame(astronaut_bgr, astronaut_face) -> np.ndarray:
    """The astronaut's face twice, side by side (real pixels)."""
    x, y, w, h = astronaut_face.bbox
    crop = astronaut_bgr[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2]
    return np.ascontiguousarray(np.hstack([crop, crop]))


def test_clip_report_measures_the_largest_face_and_warns(tmp_path, two_faces_frame):
    path = tmp_path / "two.avi"
    height, width = two_faces_frame.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, height))
    rng = np.random.default_rng(0)
    for _ in range(75):   # 7.5 s: past the report's 6 s minimum of face video
        noise = rng.integers(-2, 3, two_faces_frame.shape)
        writer.write(np.clip(two_faces_frame.astype(int) + noise, 0, 255).astype(np.uint8))
    writer.release()
    report = analyze_video(path, sections=())
    faces = report["faces"]
    assert faces["max_faces_seen"] == 2 and faces["frames_with_several_faces"] >= 60   # silent before (no key)
    assert faces["warning"]["code"] == "several_faces" and "largest face was measured" in faces["warning"]["message"]


def test_live_engine_publishes_the_several_faces_warning(two_faces_frame):
    engine = Engine([]).start()
    try:
        for i in range(3):
            target = engine.buffer.sequence + 1
            engine.submit(FramePacket(t=i / 10, image=two_faces_frame, index=i))
            deadline = time.monotonic() + 60
            while engine.buffer.sequence < target:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        deadline = time.monotonic() + 20
        while True:
            entry = engine.store.snapshot().get("face")
            face = entry.state if entry is not None else None
            if face and face.get("faces_seen") == 2:
                break
            assert time.monotonic() < deadline, face
            time.sleep(0.05)
        assert face["face_present"] and face["warning"]["code"] == "several_faces"
    finally:
        engine.stop()


def test_large_clip_frames_are_downscaled_for_the_tracker():
    big = FramePacket(t=0.0, image=np.full((2160, 3840, 3), 120, np.uint8), index=0)
    small = FramePacket(t=0.1, image=np.full((480, 640, 3), 60, np.uint8), index=1)
    out = list(_downscaled(iter([big, small]), 1280))
    assert out[0].image.shape == (720, 1280, 3) and int(out[0].image.mean()) == 120   # mean colour kept
    assert out[1] is small and out[0].t == 0.0 and out[0].index == 0
