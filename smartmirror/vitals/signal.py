"""From frames to colour traces: skin-ROI mean colour per frame, face crops, even-grid resampling, filters.

Everything here is a pure function of numpy arrays (and a :class:`~smartmirror.face.FaceObservation`). Colour
traces are in **R, G, B** order (the registry's convention), although frames arrive in BGR.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from smartmirror.face import REGIONS, SKIN_REGIONS, FaceObservation

#: Chrominance box of skin in YCrCb (Chai & Ngan 1999), wide enough for all skin tones under white-ish light.
SKIN_CR_RANGE = (133, 173)
SKIN_CB_RANGE = (77, 127)
#: Pixels darker than this fraction of the ROI's median luma (hair, brows, shadow) are dropped.
DARK_LUMA_FRACTION = 0.6
#: Pixels brighter than this (specular glare, clipped highlights), in 0..255 luma, are dropped.
GLARE_LUMA = 245

#: FaceMesh's face outline (ordered) and the brows: the pulse ROI is the whole face inside the outline less the
#: eyes with their brows and the mouth (see :func:`skin_roi_mean_rgb`).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
_BROWS = {"left_eye": (336, 296, 334, 293, 300, 276, 283, 282, 295, 285),
          "right_eye": (107, 66, 105, 63, 70, 46, 53, 52, 65, 55)}

#: Fixed-point bits for sub-pixel polygon drawing (1/16 pixel).
_SUBPIXEL_BITS = 4

#: The rate of the even grid every trace is resampled to before filtering, in Hz.
GRID_RATE_HZ = 30.0


@dataclass(frozen=True)
class RoiSample:
    """The skin ROI's colour in one frame.

    Attributes
    ----------
    rgb : ndarray, shape (3,)
        Mean R, G, B (0..255) over the kept skin pixels; NaN when none were kept.
    pixel_count : int
        Pixels inside the region polygons (before the skin test).
    skin_fraction : float
        Fraction of those pixels that passed the skin-colour test (low when a hand, hair or glasses cover the
        regions).
    """

    rgb: np.ndarray
    pixel_count: int
    skin_fraction: float


def uint8_median(values: np.ndarray) -> float:
    """``np.median`` of uint8 values, from their histogram instead of a sort (a few times faster on a face's
    pixels); NaN when there are none."""
    values = np.asarray(values)
    if values.size == 0:
        return float("nan")
    return histogram_median(np.bincount(values.ravel(), minlength=256), values.size)


def region_polygons(landmarks_px: np.ndarray, regions: tuple[str, ...] = SKIN_REGIONS) -> list[np.ndarray]:
    """Sub-pixel (float32) convex outlines of the named regions from (478, 2+) landmark coordinates."""
    points = np.asarray(landmarks_px, dtype=np.float32)[:, :2]
    return [cv2.convexHull(points[list(REGIONS[name])]).reshape(-1, 2) for name in regions]


def face_skin_polygons(landmarks_px: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The whole-face pulse ROI: (outline, holes) as float32 polygons; the holes are the eyes with their brows and
    the mouth (convex hulls), which blink, move and are not skin."""
    points = np.asarray(landmarks_px, dtype=np.float32)[:, :2]
    holes = [cv2.convexHull(points[list(REGIONS[eye]) + list(brow)]).reshape(-1, 2) for eye, brow in _BROWS.items()]
    holes.append(cv2.convexHull(points[list(REGIONS["mouth"])]).reshape(-1, 2))
    return [points[list(FACE_OVAL)]], holes


def skin_roi_mean_rgb(
    image_bgr: np.ndarray, face: FaceObservation | np.ndarray, regions: tuple[str, ...] | None = None
) -> RoiSample:
    """Mean colour of the face's skin in one frame.

    Parameters
    ----------
    image_bgr : ndarray, shape (h, w, 3), uint8
        The frame.
    face : FaceObservation or ndarray, shape (478, 2+)
        The face, or its landmarks in pixels (for instance temporally smoothed by :class:`LandmarkSmoother`).
    regions : tuple of str, optional
        Region names of :data:`smartmirror.face.REGIONS` to measure instead (e.g. ``SKIN_REGIONS``: forehead
        and cheeks). Default: the whole face less eyes, brows and mouth (:func:`face_skin_polygons`).

    Notes
    -----
    The whole face is the default because on compressed video (UBFC-rPPG's public copies are H.264 at 75-210
    kbit/s) the pulse drowns in quantisation noise that only averages out over many pixels: against the contact
    PPG the pulse SNR of 16 real subjects is 1 dB higher than over forehead and cheeks, and 3 dB higher than over
    any one of them (benchmarks/real_eval.py). The polygons are drawn with sub-pixel, anti-aliased edges, so a
    landmark that moves by a tenth of a pixel changes the ROI by a tenth of a pixel. Inside them, pixels darker than
    ``DARK_LUMA_FRACTION`` of the median luma (hair, brows, nostrils, shadow) or brighter than ``GLARE_LUMA`` are
    left out of the mean. ``skin_fraction`` is the share of ROI pixels whose chrominance is also in the skin box
    (low when a hand, hair or a mask covers the face); the chrominance test does not select pixels for the mean,
    because compression moves the chroma of skin pixels across its edges from frame to frame, which flickers.
    """
    landmarks = face.landmarks_px if isinstance(face, FaceObservation) else np.asarray(face)
    if regions is None:
        polygons, holes = face_skin_polygons(landmarks)
    else:
        polygons, holes = region_polygons(landmarks, regions), []
    return polygons_mean_rgb(image_bgr, polygons, holes)


def polygons_mean_rgb(image_bgr: np.ndarray, polygons: Sequence[np.ndarray], holes: Sequence[np.ndarray] = ()
                      ) -> RoiSample:
    """Mean colour of the lit skin inside ``polygons`` less ``holes`` ((n, 2) pixel outlines), by the rules of
    :func:`skin_roi_mean_rgb` (which calls it with the face's polygons)."""
    height, width = image_bgr.shape[:2]
    polygons, holes = list(polygons), list(holes)
    points = np.concatenate(polygons)
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int) - 1, 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + 2, 1, [width, height])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return RoiSample(np.full(3, np.nan), 0, 0.0)
    crop = image_bgr[y0:y1, x0:x1]
    origin = np.array([x0, y0], dtype=np.float32)
    scale = float(1 << _SUBPIXEL_BITS)

    def fill(outlines: list[np.ndarray]) -> np.ndarray:
        mask = np.zeros(crop.shape[:2], dtype=np.uint8)
        cv2.fillPoly(mask, [np.round((p - origin) * scale).astype(np.int32) for p in outlines], 255,
                     lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
        return mask

    coverage = fill(polygons)
    if holes:
        coverage = cv2.subtract(coverage, fill(holes))
    inside = cv2.compare(coverage, 127, cv2.CMP_GT)  # 0/255
    pixel_count = cv2.countNonZero(inside)
    if pixel_count == 0:
        return RoiSample(np.full(3, np.nan), 0, 0.0)
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb)
    luma = ycrcb[..., 0].copy()
    median_luma = masked_median(luma, inside, pixel_count)
    lit = cv2.inRange(luma, max(int(DARK_LUMA_FRACTION * median_luma), 1), GLARE_LUMA)  # 0/255
    low = np.array([0, SKIN_CR_RANGE[0], SKIN_CB_RANGE[0]], np.uint8)
    high = np.array([255, SKIN_CR_RANGE[1], SKIN_CB_RANGE[1]], np.uint8)
    skin = cv2.inRange(ycrcb, low, high)
    weights = cv2.bitwise_and(coverage, lit)  # the anti-aliased coverage (0..255) of the lit pixels
    total = float(cv2.sumElems(weights)[0])
    if total <= 0:
        return RoiSample(np.full(3, np.nan), pixel_count, 0.0)
    weighted = cv2.multiply(crop, cv2.merge([weights, weights, weights]), dtype=cv2.CV_32S)  # exact products
    bgr = np.array(cv2.sumElems(weighted)[:3]) / total
    skin_fraction = cv2.countNonZero(cv2.bitwise_and(cv2.bitwise_and(skin, lit), inside)) / pixel_count
    return RoiSample(bgr[::-1].astype(np.float64), pixel_count, skin_fraction)


def masked_median(channel: np.ndarray, mask: np.ndarray, count: int) -> float:
    """The median of a uint8 image's pixels where ``mask`` is set (``count`` of them), from OpenCV's masked
    histogram (as :func:`uint8_median` of those pixels, without indexing them out)."""
    return histogram_median(cv2.calcHist([channel], [0], mask, [256], [0, 256]).ravel(), count)


def histogram_median(histogram: np.ndarray, n: int) -> float:
    """The median of ``n`` uint8 values from their 256-bin histogram (as :func:`uint8_median`)."""
    cumulative = np.cumsum(histogram)
    low, high = np.searchsorted(cumulative, [(n - 1) // 2, n // 2], side="right")
    return (int(low) + int(high)) / 2


#: The scene reference: the frame's top-left and top-right corners, each this share of the width and height.
BACKGROUND_PATCH = (1 / 8, 1 / 6)
#: A corner patch is left out (NaN) when the face's landmark box, enlarged this much about its centre, reaches it.
BACKGROUND_FACE_MARGIN = 1.5


def background_patches_rgb(image_bgr: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """Mean R, G, B of the frame's two top corners (left, then right), the scene's reference for the skin trace.

    What changes the whole picture's colour at once (the camera's or the encoder's exposure and white balance,
    a flickering lamp, the browser's VP8 quantiser) changes a plain background patch too, while the pulse does
    not; :func:`smartmirror.vitals.rppg.remove_background` regresses it out of the skin colours. A patch the face
    reaches (its landmark box enlarged :data:`BACKGROUND_FACE_MARGIN` times) is NaN: it would carry the pulse.

    Returns
    -------
    ndarray, shape (6,)
        R, G, B of the top-left patch, then of the top-right patch (0..255).
    """
    height, width = image_bgr.shape[:2]
    pw, ph = max(1, int(width * BACKGROUND_PATCH[0])), max(1, int(height * BACKGROUND_PATCH[1]))
    points = np.asarray(landmarks_px, dtype=np.float64)[:, :2]
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2 * BACKGROUND_FACE_MARGIN
    face_x0, face_y0 = centre - half
    face_x1 = centre[0] + half[0]
    out = np.full(6, np.nan)
    for k, (x0, x1) in enumerate(((0, pw), (width - pw, width))):
        if face_y0 < ph and face_x0 < x1 and face_x1 > x0:
            continue
        out[3 * k:3 * k + 3] = cv2.mean(image_bgr[:ph, x0:x1])[2::-1]
    return out


class LandmarkSmoother:
    """Temporal smoothing of the face's *shape*, not its position.

    FaceMesh landmarks jitter by a few tenths of a pixel between frames even on a still face; on a small face
    that moves the ROI edges enough to swamp the pulse. Each frame the landmarks are split into their centroid
    (followed at once, so head motion is not lagged) and their offsets from it (exponentially averaged with
    weight ``alpha`` for the new frame).

    Parameters
    ----------
    alpha : float
        Weight of the newest shape, 0..1 (1 = no smoothing).
    """

    def __init__(self, alpha: float = 0.25):
        self.alpha = alpha
        self.reset()

    def reset(self) -> None:
        self.shape_: np.ndarray | None = None

    def update(self, landmarks_px: np.ndarray) -> np.ndarray:
        """Smoothed (478, 2) landmarks for this frame."""
        points = np.asarray(landmarks_px, dtype=np.float64)[:, :2]
        centre = points.mean(axis=0)
        offsets = points - centre
        if self.shape_ is None or self.shape_.shape != offsets.shape:
            self.shape_ = offsets
        else:
            self.shape_ = self.alpha * offsets + (1.0 - self.alpha) * self.shape_
        return centre + self.shape_


def face_crop(image_bgr: np.ndarray, face: FaceObservation, size: tuple[int, int] = (72, 72)) -> np.ndarray:
    """A square crop around the face landmarks, enlarged 1.2x, resized to ``size`` (height, width), **RGB** uint8.

    This is the input contract of the learned ("frames") pulse methods.
    """
    height, width = image_bgr.shape[:2]
    points = face.landmarks_px[:, :2]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    half = 0.6 * float(np.max(points.max(axis=0) - points.min(axis=0)))
    x0, y0 = (centre - half).astype(int)
    x1, y1 = (centre + half).astype(int)
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        image_bgr = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = image_bgr[y0:y1, x0:x1]
    crop = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def resample_even(
    times_s: np.ndarray, values: np.ndarray, *, rate_hz: float = GRID_RATE_HZ, t_start: float | None = None,
    t_end: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of samples at true (uneven) times onto an even grid.

    Rows of ``values`` with NaN are ignored (interpolated over). This runs before any filtering: filters
    assume an even sampling rate, and webcams drop frames and jitter.

    Parameters
    ----------
    times_s : ndarray, shape (n,)
        Increasing sample times in seconds.
    values : ndarray, shape (n,) or (n, k)
        Samples.
    rate_hz : float
        Rate of the grid in Hz (samples/second).
    t_start, t_end : float, optional
        Grid limits (default: the first and last valid sample).

    Returns
    -------
    grid_s : ndarray, shape (m,)
    resampled : ndarray, shape (m,) or (m, k)
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    one_d = values.ndim == 1
    values_2d = values[:, None] if one_d else values
    valid = np.all(np.isfinite(values_2d), axis=1)
    t_valid = times_s[valid]
    if len(t_valid) < 2:
        empty = np.zeros((0,) + values.shape[1:])
        return np.zeros(0), empty
    start = t_valid[0] if t_start is None else t_start
    end = t_valid[-1] if t_end is None else t_end
    count = int(np.floor((end - start) * rate_hz + 1e-9)) + 1
    grid = start + np.arange(max(count, 0)) / rate_hz
    columns = [np.interp(grid, t_valid, values_2d[valid, k]) for k in range(values_2d.shape[1])]
    out = np.stack(columns, axis=1) if columns else np.zeros((len(grid), 0))
    return grid, (out[:, 0] if one_d else out)


def gap_mask(times_s: np.ndarray, valid: np.ndarray, grid_s: np.ndarray, *, max_gap_s: float = 0.5) -> np.ndarray:
    """Boolean per grid point: True where a valid real sample lies within ``max_gap_s`` / 2 on both sides.

    Grid points inside a gap longer than ``max_gap_s`` (face lost, stalled camera) are False.
    """
    t_valid = np.asarray(times_s, dtype=np.float64)[np.asarray(valid, dtype=bool)]
    if len(t_valid) == 0:
        return np.zeros(len(grid_s), dtype=bool)
    after = np.searchsorted(t_valid, grid_s, side="left")
    next_t = t_valid[np.clip(after, 0, len(t_valid) - 1)]
    prev_t = t_valid[np.clip(after - 1, 0, len(t_valid) - 1)]
    span = np.where(after == 0, np.inf, np.where(after >= len(t_valid), np.inf, next_t - prev_t))
    exact = np.isclose(next_t, grid_s) | np.isclose(prev_t, grid_s)
    return (span <= max_gap_s) | exact


def bandpass(
    signal: np.ndarray, *, sampling_rate: float, low_hz: float, high_hz: float, order: int = 3
) -> np.ndarray:
    """Zero-phase Butterworth band-pass along axis 0 (``sosfiltfilt``); short inputs are only detrended.

    Parameters
    ----------
    signal : ndarray, shape (n,) or (n, k)
    sampling_rate : float
        In Hz (samples/second).
    low_hz, high_hz : float
        Pass band edges in Hz.
    """
    from scipy.signal import detrend, sosfiltfilt

    signal = np.asarray(signal, dtype=np.float64)
    sos = _butter_bandpass(order, round(low_hz, 6), round(high_hz, 6), float(sampling_rate)).copy()
    padlen = 3 * (2 * len(sos) + 1)
    if len(signal) <= padlen:
        return detrend(signal, axis=0) if len(signal) > 1 else signal - signal.mean(axis=0)
    return sosfiltfilt(sos, detrend(signal, axis=0), axis=0, padlen=min(len(signal) - 1, int(sampling_rate * 2)))


@functools.lru_cache(maxsize=256)
def _butter_bandpass(order: int, low_hz: float, high_hz: float, sampling_rate: float) -> np.ndarray:
    from scipy.signal import butter

    nyquist = sampling_rate / 2
    high_hz = min(high_hz, 0.95 * nyquist)
    sos = butter(order, [low_hz / nyquist, high_hz / nyquist], btype="bandpass", output="sos")
    return sos


def normalise_channels(rgb: np.ndarray) -> np.ndarray:
    """Each channel divided by its mean, minus 1: relative (unitless) colour change, shape (n, 3)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    mean = rgb.mean(axis=0)
    mean[mean == 0] = 1.0
    return rgb / mean - 1.0
