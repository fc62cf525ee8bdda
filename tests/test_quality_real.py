"""Face quality and liveness on real faces (tests/data/README.md lists the recordings).

- tests/data/physrecorder_webcam_10s.mp4: 10 s of the PhysRecorder example (MIT), a real webcam face with
  glasses and a short fringe, re-encoded H.264 from its lossless frames. Before calibration on real faces the
  report called it "Forehead or cheeks covered" (obstruction 1.0) and not live.
- tests/data/tracks/: per-frame presence, skin fraction and landmarks of real clips (see test_fatigue_real.py).
- tests/data/skin_patches_bias_eval_rppg.npz: forehead patches of darker-skinned subjects (bias-eval-rppg, MIT).
- The still face is the webcam clip's own first frame, written here as a 10 s video with camera noise: a photo.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.fatigue.track import FaceTrack, replay
from smartmirror.frames import read_video_packets
from smartmirror.vitals import quality
from smartmirror.vitals.signal import skin_roi_mean_rgb

DATA = Path(__file__).parent / "data"
WEBCAM = DATA / "physrecorder_webcam_10s.mp4"


@pytest.fixture(scope="module")
def webcam_frame():
    """The first frame of the real webcam clip and FaceMesh's observation of it."""
    image = next(read_video_packets(WEBCAM)).image
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(image)
    assert face is not None
    return image, face


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory, webcam_frame):
    """10 s at 30 fps of the webcam clip's first frame with +-3 grey levels of sensor noise (H.264, CRF 18)."""
    image, _ = webcam_frame
    path = tmp_path_factory.mktemp("still") / "still_face.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for _ in range(300):
            noisy = np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_real_face_with_glasses_and_fringe_is_skin_under_its_own_white_balance(webcam_frame):
    image, face = webcam_frame
    assert face.presence_score >= quality.MIN_PRESENCE_SCORE
    skin = quality.roi_skin_fraction(image, face)
    assert skin > 0.85
    # the fixed chrominance box of the pulse ROI rejects most of this bluish-balanced face (Cb 129-130 > 127):
    # the reason the clip report called this face covered
    assert skin_roi_mean_rgb(image, face).skin_fraction < quality.MIN_SKIN_FRACTION
    assert not quality.frame_obstructed(face.presence_score, skin)
    assert quality.presence_message(face.presence_score, skin) is None


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("dim light", lambda im: (im * 0.35).astype(np.uint8)),
        ("warm light", lambda im: np.clip(im * np.array([0.75, 0.95, 1.15]), 0, 255).astype(np.uint8)),
    ],
)
def test_skin_test_holds_in_dim_and_coloured_light(webcam_frame, name, edit):
    image, face = webcam_frame
    assert quality.roi_skin_fraction(edit(image.astype(np.float64)), face) > 0.8, name


@pytest.mark.parametrize("edit", [lambda im: im, lambda im: (im * 0.35).astype(np.uint8),
                                  lambda im: np.clip(im * np.array([0.75, 0.95, 1.15]), 0, 255).astype(np.uint8)])
def test_the_frames_skin_share_is_skin_share_of_the_roi_pixels(webcam_frame, edit):
    """The per-frame obstruction test runs on OpenCV's masked histograms and ranges; it must equal
    :func:`quality.skin_share` (the definition, in NumPy) of the forehead and cheek pixels, exactly."""
    from smartmirror.vitals.signal import region_polygons

    image, face = webcam_frame
    image = edit(image.astype(np.float64)).astype(np.uint8)
    inside = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(p).astype(np.int32) for p in region_polygons(face.landmarks_px)], 1)
    pixels = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)[inside > 0]
    assert quality.roi_skin_fraction(image, face) == quality.skin_share(pixels)


def test_darker_skin_in_dim_light_is_skin():
    """Forehead patches of darker-skinned subjects from India and Sierra Leone (bias-eval-rppg, real webcam
    video, median luma 50-120, Cr up to 171): skin; the same patches under a grey or blue cloth are not."""
    with np.load(DATA / "skin_patches_bias_eval_rppg.npz") as patches:
        assert len(patches.files) == 6
        for name in patches.files:
            for patch in patches[name]:
                ycrcb = cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb)
                assert quality.skin_share(ycrcb) > 0.7, name
                for cloth in ((128, 128, 128), (200, 120, 60)):
                    covered = patch.copy()
                    covered[:, : 3 * patch.shape[1] // 4] = cloth
                    assert quality.skin_share(cv2.cvtColor(covered, cv2.COLOR_BGR2YCrCb)) < 0.3, name


@pytest.mark.parametrize(
    ("name", "colour", "share"),
    [("grey cloth", (128, 128, 128), 0.6), ("dark hat", (30, 30, 30), 0.6), ("blue mask", (200, 120, 60), 0.6),
     ("white cover", (235, 235, 235), 0.6)],
)
def test_covered_forehead_and_cheeks_are_obstructed(webcam_frame, name, colour, share):
    """A band over the top ``share`` of the face (forehead, eyes and upper cheeks) is not skin."""
    image, face = webcam_frame
    x, y, w, h = face.bbox
    covered = image.copy()
    covered[y: y + int(share * h), x: x + w] = colour
    skin = quality.roi_skin_fraction(covered, face)
    assert skin < quality.MIN_SKIN_FRACTION, name
    assert quality.frame_obstructed(face.presence_score, skin)
    assert quality.presence_message(face.presence_score, skin).startswith("Forehead or cheeks covered")


@pytest.mark.parametrize(
    "name",
    ["physrecorder_webcam_glasses_fringe", "yawdd_46_male_glasses_yawning",
     "yawdd_11_female_sunglasses_talking_yawning", "pexels_wolfgang_langer_expressions"],
)
def test_uncovered_real_faces_are_below_the_obstruction_warning(name):
    """Real uncovered faces (glasses, sunglasses, a fringe, hair, hands on the cheeks) over whole clips."""
    track = FaceTrack.load(DATA / "tracks" / f"{name}.npz")
    result = quality.face_quality(track.face_found, track.presence, track.skin_fraction)
    assert result.obstruction <= quality.MAX_OBSTRUCTED_SHARE and result.message is None


@pytest.mark.parametrize(
    ("name", "live"),
    [("physrecorder_webcam_glasses_fringe", True), ("yawdd_46_male_glasses_yawning", True),
     ("pexels_wolfgang_langer_expressions", True), ("still_physrecorder_frame", False)],
)
def test_facial_motion_liveness_on_real_and_still_faces(name, live):
    meter = quality.FaceMotionLiveness(window_s=60.0)
    for packet, face in replay(FaceTrack.load(DATA / "tracks" / f"{name}.npz")):
        meter.update(packet.t, face)
    assert meter.live() is live, meter.evidence()


def test_liveness_needs_a_few_seconds_and_combines_both_cues():
    meter = quality.FaceMotionLiveness()
    assert meter.live() is None
    assert quality.combined_liveness(None, None) is None
    assert quality.combined_liveness(False, None) is False and quality.combined_liveness(None, False) is False
    assert quality.combined_liveness(False, True) is True and quality.combined_liveness(True, False) is True


def test_report_on_a_real_webcam_face_is_uncovered_and_live_and_a_still_of_it_is_not(still_clip):
    from smartmirror.report import analyze_video

    real = analyze_video(WEBCAM, sections=())["quality"]
    assert real["face_detected_ratio"] == 1.0 and real["obstruction"] < quality.MAX_OBSTRUCTED_SHARE
    assert real["message"] is None and real["liveness"] is True
    still = analyze_video(still_clip, sections=())["quality"]
    assert still["obstruction"] < quality.MAX_OBSTRUCTED_SHARE  # a photo is not covered ...
    assert still["liveness"] is False  # ... but it is not alive


def test_a_still_noisy_face_gets_no_heart_rate_and_the_real_face_does(still_clip):
    """A photo with camera noise, H.264-encoded: its tracker jitter and encoder pulsing make a periodic,
    blood-coloured variation that the whole-clip rate path would string into a confident 101 beats/min; it
    stands barely 10 dB above the camera's own noise floor (a real pulse: 17-29 dB), so the report says null."""
    from smartmirror.report import analyze_video
    from smartmirror.vitals import heart

    still = analyze_video(still_clip, sections=())
    assert still["heart_rate_bpm"] is None                  # a wrong reading is worse than none
    assert still["heart_rate_confidence"] < heart.CONFIDENCE_GATE
    real = analyze_video(WEBCAM, sections=())
    assert real["heart_rate_bpm"] == pytest.approx(71.0, abs=4.0)   # the finger oximeter read about 71
