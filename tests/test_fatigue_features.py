"""Fatigue features on real FaceMesh landmarks of the astronaut portrait (and edits of them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fatigue_sequences import make_face, paint_closed_eyes

from smartmirror.face import FaceTracker
from smartmirror.fatigue import MLP_FEATURE_NAMES, eye_aspect_ratio, fatigue_features, mouth_aspect_ratio
from smartmirror.fatigue.features import CHIN, NOSE_TIP, OUTER_EYE_CORNERS


# Reference definitions, one feature at a time, of what fatigue_features computes in one pass.
def eye_line_tilt_deg(landmarks_xy: np.ndarray) -> float:
    """Angle of the outer-eye-corner line to the image horizontal, degrees in [-90, 90]."""
    left = landmarks_xy[OUTER_EYE_CORNERS[0], :2]
    right = landmarks_xy[OUTER_EYE_CORNERS[1], :2]
    angle = math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))
    return angle + 180 if angle < -90 else angle - 180 if angle > 90 else angle


def pitch_ratio(landmarks_xy: np.ndarray) -> float:
    """Nose-tip-to-chin distance over the outer eye corners' distance."""
    nose_chin = math.dist(landmarks_xy[NOSE_TIP, :2], landmarks_xy[CHIN, :2])
    return nose_chin / math.dist(landmarks_xy[OUTER_EYE_CORNERS[0], :2], landmarks_xy[OUTER_EYE_CORNERS[1], :2])


def test_eye_aspect_ratio_of_known_points():
    # corners 10 px apart, both lid pairs 4 px apart: (4 + 4) / (2 * 10)
    points = np.array([[0, 0], [3, 2], [7, 2], [10, 0], [7, -2], [3, -2]], dtype=float)
    assert eye_aspect_ratio(points) == pytest.approx(0.4)
    points[[1, 2], 1] = 0.5
    points[[4, 5], 1] = -0.5
    assert eye_aspect_ratio(points) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"\(6, 2\)"):
        eye_aspect_ratio(points[:5])


def test_astronaut_has_open_eyes_a_closed_mouth_and_a_level_head(astronaut_face):
    f = fatigue_features(astronaut_face)
    assert 0.25 < f.ear_left < 0.42 and 0.25 < f.ear_right < 0.42
    assert abs(f.ear_left - f.ear_right) / f.ear < 0.15
    assert f.ear == pytest.approx((f.ear_left + f.ear_right) / 2)
    assert 0.2 < f.mar < 0.5 and not f.yawn_flag  # smiling, lips together
    assert f.mar == pytest.approx(mouth_aspect_ratio(astronaut_face.landmarks_px))
    assert abs(f.tilt_deg) < 6 and f.tilt_deg == pytest.approx(eye_line_tilt_deg(astronaut_face.landmarks_px))
    assert 0.5 < f.pitch_ratio < 1.2 and f.pitch_ratio == pytest.approx(pitch_ratio(astronaut_face.landmarks_px))
    assert (f.head_roll_deg, f.head_pitch_deg, f.head_yaw_deg) == (
        astronaut_face.roll_deg, astronaut_face.pitch_deg, astronaut_face.yaw_deg
    )
    vector = f.mlp_vector()
    assert vector.shape == (len(MLP_FEATURE_NAMES),)
    assert list(vector) == [f.ear, f.mar, 0.0, f.tilt_deg, f.pitch_ratio]


def test_eyelid_and_jaw_edits_move_ear_and_mar_as_expected(astronaut_face):
    open_ = fatigue_features(astronaut_face)
    half = fatigue_features(make_face(astronaut_face, eye_closure=0.5))
    shut = fatigue_features(make_face(astronaut_face, eye_closure=1.0))
    assert half.ear == pytest.approx(0.5 * open_.ear, rel=0.02)
    assert shut.ear < 0.02
    assert half.mar == pytest.approx(open_.mar, abs=1e-6)  # the eyes do not move the mouth
    yawn = fatigue_features(make_face(astronaut_face, mouth_opening=0.6))
    assert yawn.mar == pytest.approx(open_.mar + 0.6, abs=0.05) and yawn.yawn_flag
    assert yawn.ear == pytest.approx(open_.ear, abs=1e-6)


def test_pitching_the_real_landmarks_is_measured_as_pitch(astronaut_face):
    level = fatigue_features(astronaut_face)
    down = make_face(astronaut_face, pitch_deg=-20.0)
    f = fatigue_features(down)
    assert f.head_pitch_deg == pytest.approx(-20.0, abs=3.0)
    assert abs(f.head_yaw_deg) < 3 and abs(f.head_roll_deg) < 3
    assert f.pitch_ratio < level.pitch_ratio - 0.1  # the nose-chin segment foreshortens
    turned = make_face(astronaut_face, yaw_deg=35.0)
    assert turned.yaw_deg == pytest.approx(35.0, abs=5.0)


def test_real_photo_with_eyes_painted_shut_gives_low_ear(astronaut_bgr, astronaut_face):
    """Feature extraction on real pixels: FaceMesh sees the painted lids, the mouth is untouched."""
    shut_image = paint_closed_eyes(astronaut_bgr, astronaut_face)
    with FaceTracker(static_image_mode=True, max_num_faces=1) as tracker:
        shut_face = tracker.process(shut_image)
    assert shut_face is not None
    open_ = fatigue_features(astronaut_face)
    shut = fatigue_features(shut_face)
    assert shut.ear < 0.4 * open_.ear, (shut.ear, open_.ear)
    assert shut.ear_left < 0.5 * open_.ear_left and shut.ear_right < 0.5 * open_.ear_right
    assert shut.mar == pytest.approx(open_.mar, rel=0.15)


def test_bad_landmarks_raise_a_clear_error(astronaut_face):
    import dataclasses

    broken = dataclasses.replace(astronaut_face, landmarks_px=np.zeros((10, 3), np.float32), _masks={})
    with pytest.raises(ValueError, match="478"):
        fatigue_features(broken)
