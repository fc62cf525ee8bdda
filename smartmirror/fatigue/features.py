"""Per-frame fatigue features from FaceMesh landmarks: eye and mouth aspect ratios, head tilt and pitch.

All functions are pure (numpy and math) on one :class:`~smartmirror.face.FaceObservation`; nothing here keeps
state. The landmark choices are those of the drowsiness MLP's 5-D feature vector, so a model trained on it reads the
same numbers:

- eye aspect ratio (EAR), Soukupova & Cech's six points per eye;
- mouth aspect ratio (MAR): outer-lip height (landmarks 0 to 17) over mouth-corner width (61 to 291);
- head tilt: angle of the line between the outer eye corners (33, 263), degrees;
- pitch ratio: nose-tip-to-chin distance (1 to 152) over the outer eye corners' distance.

References
----------
Soukupova, T. & Cech, J. (2016). Real-time eye blink detection using facial landmarks. 21st Computer Vision
Winter Workshop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smartmirror.face import FaceObservation

#: Soukupova & Cech's p1..p6 per eye: p1, p4 the corners; (p2, p6) and (p3, p5) the upper/lower lid pairs.
#: "right" is the subject's right eye (the left one in an unmirrored image), as in FaceMesh.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
MOUTH_UPPER_MID = 0
MOUTH_LOWER_MID = 17
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1
CHIN = 152
OUTER_EYE_CORNERS = (263, 33)  # subject's left, right

#: Fixed mouth-open threshold on MAR. Used for the MLP's ``yawn_flag`` input only (a single photo
#: has no baseline); the live yawn detector uses a per-person calibrated threshold instead.
STATIC_YAWN_MAR = 0.6

#: The MLP's input vector, in order (the five drowsiness features).
MLP_FEATURE_NAMES = ("ear", "mar", "yawn_flag", "tilt_deg", "pitch_ratio")

_INDICES = np.array(
    [*RIGHT_EYE_EAR, *LEFT_EYE_EAR, MOUTH_UPPER_MID, MOUTH_LOWER_MID, *MOUTH_CORNERS, NOSE_TIP, CHIN], dtype=np.intp
)
_EPS = 1e-6


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Eye aspect ratio of six eye points (Soukupova & Cech).

    Parameters
    ----------
    points : ndarray, shape (6, 2)
        p1..p6 in pixels: p1 and p4 the eye corners, p2/p3 on the upper lid above p6/p5 on the lower lid.

    Returns
    -------
    float
        (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|): about 0.3 for an open eye, near 0 for a shut one (unitless).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (6, 2):
        raise ValueError(f"eye_aspect_ratio expects (6, 2) points, got shape {points.shape}")
    vertical = math.dist(points[1], points[5]) + math.dist(points[2], points[4])
    return vertical / (2.0 * math.dist(points[0], points[3]) + _EPS)


def mouth_aspect_ratio(landmarks_xy: np.ndarray) -> float:
    """Mouth aspect ratio: outer-lip height (0 to 17) over corner-to-corner width (61 to 291).

    Parameters
    ----------
    landmarks_xy : ndarray, shape (478, 2) or (478, 3)
        FaceMesh landmarks in pixels (z ignored).
    """
    height = math.dist(landmarks_xy[MOUTH_UPPER_MID, :2], landmarks_xy[MOUTH_LOWER_MID, :2])
    width = math.dist(landmarks_xy[MOUTH_CORNERS[0], :2], landmarks_xy[MOUTH_CORNERS[1], :2])
    return height / (width + _EPS)


@dataclass(frozen=True)
class FatigueFeatures:
    """The per-frame fatigue features of one face.

    Attributes
    ----------
    ear_left, ear_right, ear : float
        Eye aspect ratio of the subject's left eye, right eye, and their mean (unitless).
    mar : float
        Mouth aspect ratio (unitless; about 0.3 with lips together, > 0.6 yawning).
    yawn_flag : bool
        ``mar`` above the fixed threshold :data:`STATIC_YAWN_MAR` (the MLP input; not the yawn detector).
    tilt_deg : float
        Angle of the outer-eye-corner line to the image horizontal, degrees in [-90, 90]; positive when the
        subject's right eye (image left) sits lower than the left eye.
    pitch_ratio : float
        Nose-tip-to-chin distance over the outer eye corners' distance (unitless); drops when the head pitches
        down or up away from the camera (the nose-chin segment foreshortens).
    head_roll_deg, head_pitch_deg, head_yaw_deg : float
        The tracker's head pose (solvePnP), degrees: roll positive clockwise in the image, pitch positive looking
        up, yaw positive turning to the subject's left.
    """

    ear_left: float
    ear_right: float
    ear: float
    mar: float
    yawn_flag: bool
    tilt_deg: float
    pitch_ratio: float
    head_roll_deg: float
    head_pitch_deg: float
    head_yaw_deg: float

    def mlp_vector(self) -> np.ndarray:
        """The 5-D MLP input in :data:`MLP_FEATURE_NAMES` order, float64."""
        return np.array([self.ear, self.mar, float(self.yawn_flag), self.tilt_deg, self.pitch_ratio])


def eye_openness(landmarks_px: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes (:func:`eye_aspect_ratio`) from (478, 2+) landmarks in pixels."""
    return 0.5 * (eye_aspect_ratio(landmarks_px[list(LEFT_EYE_EAR), :2])
                  + eye_aspect_ratio(landmarks_px[list(RIGHT_EYE_EAR), :2]))


def fatigue_features(face: FaceObservation) -> FatigueFeatures:
    """Compute all per-frame fatigue features of one tracked face."""
    landmarks = face.landmarks_px
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] < 2:
        raise ValueError(f"expected FaceMesh landmarks of shape (478, 3), got {landmarks.shape}")
    # rows: 0-5 right eye p1..p6, 6-11 left eye p1..p6, 12 upper lip, 13 lower lip, 14-15 corners, 16 nose, 17 chin
    p = landmarks[_INDICES, :2].tolist()  # plain floats: math.dist on 18 points beats numpy's per-call overhead
    dist = math.dist
    ear_right = (dist(p[1], p[5]) + dist(p[2], p[4])) / (2.0 * dist(p[0], p[3]) + _EPS)
    ear_left = (dist(p[7], p[11]) + dist(p[8], p[10])) / (2.0 * dist(p[6], p[9]) + _EPS)
    mar = dist(p[12], p[13]) / (dist(p[14], p[15]) + _EPS)
    eye_corner_left, eye_corner_right = p[9], p[0]  # 263, 33
    eye_width = dist(eye_corner_left, eye_corner_right)
    tilt = math.degrees(
        math.atan2(eye_corner_right[1] - eye_corner_left[1], eye_corner_right[0] - eye_corner_left[0])
    )
    if tilt < -90:
        tilt += 180
    elif tilt > 90:
        tilt -= 180
    return FatigueFeatures(
        ear_left=float(ear_left),
        ear_right=float(ear_right),
        ear=float(0.5 * (ear_left + ear_right)),
        mar=float(mar),
        yawn_flag=bool(mar > STATIC_YAWN_MAR),
        tilt_deg=float(tilt),
        pitch_ratio=float(dist(p[16], p[17]) / (eye_width + _EPS)),
        head_roll_deg=float(face.roll_deg),
        head_pitch_deg=float(face.pitch_deg),
        head_yaw_deg=float(face.yaw_deg),
    )
