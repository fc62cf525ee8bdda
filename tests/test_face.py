"""FaceMesh on the real astronaut portrait: one face, 478 landmarks, regions on skin, head pose, no-face cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smartmirror.face import LEFT_IRIS_CENTER, REGIONS, RIGHT_IRIS_CENTER, SKIN_REGIONS, FaceTracker


def _skin_fraction(image_bgr: np.ndarray, mask: np.ndarray) -> float:
    """Share of masked pixels whose colour is skin-like (a classic YCrCb box)."""
    ycrcb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YCrCb)[mask]
    skin = (ycrcb[:, 1] >= 133) & (ycrcb[:, 1] <= 173) & (ycrcb[:, 2] >= 77) & (ycrcb[:, 2] <= 127)
    return float(skin.mean())


def test_astronaut_has_one_face_with_478_landmarks(astronaut_face, astronaut_bgr):
    face = astronaut_face
    assert face.landmarks_px.shape == (478, 3)
    assert face.num_faces == 1
    assert face.presence_score > 0.9
    x, y, w, h = face.bbox
    # the face is in the upper middle of the 512x512 portrait
    assert 120 < x + w / 2 < 300 and 60 < y + h / 2 < 200
    assert 60 < w < 160 and 70 < h < 180
    assert face.image_size == astronaut_bgr.shape[:2]
    assert 20 < face.inter_ocular_px < 60


def test_regions_lie_on_skin_and_in_the_right_places(astronaut_face, astronaut_bgr):
    face = astronaut_face
    for name in SKIN_REGIONS:
        mask = face.region_mask(name)
        assert mask.sum() > 150, name
        assert _skin_fraction(astronaut_bgr, mask) > 0.8, name
    centres = {name: np.argwhere(face.region_mask(name)).mean(axis=0) for name in REGIONS}  # (row, col)
    assert centres["forehead"][0] < centres["left_eye"][0] < centres["left_cheek"][0] < centres["mouth"][0] + 5
    # subject's left is on the image's right
    assert centres["left_eye"][1] > centres["right_eye"][1]
    assert centres["left_cheek"][1] > centres["right_cheek"][1]
    for eye in ("left_eye", "right_eye"):
        for cheek in ("left_cheek", "right_cheek"):
            assert not (face.region_mask(eye) & face.region_mask(cheek)).any()
    with pytest.raises(ValueError, match="Unknown region"):
        face.region_polygon("nose")


def test_frontal_portrait_pose_is_near_zero_and_roll_follows_rotation(astronaut_face, astronaut_bgr):
    assert abs(astronaut_face.yaw_deg) < 3 and abs(astronaut_face.pitch_deg) < 3 and abs(astronaut_face.roll_deg) < 3
    centre = (256, 256)
    with FaceTracker(static_image_mode=True) as tracker:
        for angle in (-15, 15):
            rotated = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D(centre, angle, 1.0), (512, 512))
            face = tracker.process(rotated)
            assert face is not None
            # cv2's positive angle turns the image anticlockwise: the head then tilts anticlockwise (negative roll)
            assert face.roll_deg == pytest.approx(-angle, abs=4)
        mirrored = tracker.process(cv2.flip(astronaut_bgr, 1))
    assert abs(mirrored.yaw_deg) < 10


def test_yaw_sign_follows_a_turned_head(astronaut_face):
    """Squeeze one side of the face (as a turn does) and the yaw moves the expected way."""
    from smartmirror.face import head_pose_deg

    landmarks = astronaut_face.landmarks_px.copy()
    centre_x = landmarks[1, 0]
    turned = landmarks.copy()
    right_side = turned[:, 0] > centre_x
    turned[right_side, 0] = centre_x + (turned[right_side, 0] - centre_x) * 0.6  # image-right half recedes
    turned[~right_side, 0] = centre_x + (turned[~right_side, 0] - centre_x) * 1.1
    yaw, _, _ = head_pose_deg(turned, astronaut_face.image_size)
    assert yaw > 10  # image-right is the subject's left: turning to their left squeezes it


def test_no_face_gives_none_not_an_exception():
    from skimage import data

    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    dark = np.zeros((480, 640, 3), np.uint8)
    with FaceTracker(static_image_mode=True) as tracker:
        assert tracker.process(coffee) is None
        assert tracker.process(dark) is None


def two_faces_frame(astronaut_bgr: np.ndarray) -> np.ndarray:
    """A 640x480 frame with two people side by side, the left one larger (webcam framing)."""
    crop = astronaut_bgr[30:330, 80:380]
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[80:390, 5:315] = cv2.resize(crop, (310, 310))
    canvas[120:380, 360:620] = cv2.resize(crop, (260, 260))
    return canvas


def test_two_faces_are_counted_and_the_larger_is_followed(astronaut_bgr):
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(two_faces_frame(astronaut_bgr))
    assert face is not None
    assert face.num_faces == 2
    assert face.bbox[0] + face.bbox[2] < 330  # the larger face, on the left


def test_covered_face_lowers_presence_or_loses_the_face(astronaut_bgr, astronaut_face):
    covered = astronaut_bgr.copy()
    x, y, w, h = astronaut_face.bbox
    covered[y + h // 3: y + h, x - 10: x + w + 10] = (40, 40, 40)  # a hand over nose and mouth
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(covered)
    assert face is None or face.presence_score < astronaut_face.presence_score


def test_video_mode_tracks_consecutive_frames(astronaut_bgr):
    with FaceTracker() as tracker:
        faces = [tracker.process(np.roll(astronaut_bgr, shift, axis=1)) for shift in range(0, 20, 2)]
    assert all(f is not None for f in faces)
    xs = [f.landmarks_px[1, 0] for f in faces]
    assert np.all(np.diff(xs) > 0)  # the nose follows the shift


def test_rejects_bad_arrays():
    with FaceTracker(static_image_mode=True) as tracker:
        with pytest.raises(ValueError):
            tracker.process(np.zeros((10, 10), np.uint8))
        with pytest.raises(ValueError):
            tracker.process(np.zeros((10, 10, 3), np.float32))


def test_plain_mesh_gives_478_landmarks_with_irises_inside_the_eyes(astronaut_face, astronaut_bgr):
    with FaceTracker(static_image_mode=True, refine_landmarks=False) as tracker:
        plain = tracker.process(astronaut_bgr)
    assert plain is not None and plain.landmarks_px.shape == (478, 3)
    # the face's outline agrees with the refined mesh's within a pixel or two on this 512x512 portrait
    oval = np.abs(plain.landmarks_px[:468, :2] - astronaut_face.landmarks_px[:468, :2])
    assert np.median(oval) < 1.5
    # each estimated iris centre lies inside its eye, near the refined mesh's measured one
    for eye, centre in (("right_eye", RIGHT_IRIS_CENTER), ("left_eye", LEFT_IRIS_CENTER)):
        outline = plain.region_polygon(eye).astype(np.float32)
        assert cv2.pointPolygonTest(outline, tuple(map(float, plain.landmarks_px[centre, :2])), False) > 0
        assert np.linalg.norm(plain.landmarks_px[centre, :2] - astronaut_face.landmarks_px[centre, :2]) < 2.0
    assert plain.inter_ocular_px == pytest.approx(astronaut_face.inter_ocular_px, rel=0.1)
    for name in SKIN_REGIONS:
        assert _skin_fraction(astronaut_bgr, plain.region_mask(name)) > 0.8, name
