"""Signal quality: face presence and obstruction per frame, and pulse-based liveness.

Obstruction: a frame is obstructed when the face detector barely sees a face (confidence below
:data:`MIN_PRESENCE_SCORE`) or when fewer than :data:`MIN_SKIN_FRACTION` of the forehead and cheek pixels look
like *this person's* skin (:func:`roi_skin_fraction`). Either way the user gets a clear message instead of
silently wrong numbers.

Calibrated on real recordings (tests/data/README.md), not on published thresholds: the short-range face detector
scores uncovered real faces 0.85-0.97 in daylight and 0.2-0.8 in a car at night, and a hand over the mouth
barely moves it, so a fixed 0.9 threshold called a quarter to all frames of real, uncovered faces obstructed; the
threshold is the detector's own 0.5. A fixed skin-chrominance box (Chai & Ngan's Cr 133-173, Cb 77-127) rejects
60 % of a real webcam face under a bluish white balance (Cb 129-130) and most of a face lit by a car's dim
interior light (Cr 129-132): the skin test here is relative to the face's own median chrominance instead.

Liveness has two independent cues, and either one makes a face live (:func:`combined_liveness`):

- pulse: living skin pulses, and its colour varies along the blood-volume direction (green most, red least,
  see :class:`smartmirror.vitals.colour_signature.PulseSignature`); the median window confidence reaches the heart-rate
  gate (:func:`pulse_liveness`). On compressed real video (a 1.2 Mbit/s H.264 webcam file, in-car clips) the
  pulse is often too weak for the gate although the person is alive, so this cue alone calls real people
  not live.
- facial motion: a living face blinks and moves its mouth, which a printed photo, a still frame or a picture on
  a screen cannot, however it is moved (a photo moves rigidly: the eye and mouth aspect ratios stay put)
  (:class:`FaceMotionLiveness`).

A photo, a print or a still frame has neither, so ``liveness`` is False for it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.fatigue.features import eye_openness, mouth_aspect_ratio
from smartmirror.vitals.heart import CONFIDENCE_GATE, HeartRateReading
from smartmirror.vitals.signal import SKIN_CB_RANGE, SKIN_CR_RANGE, masked_median, region_polygons, uint8_median

#: Face-detector confidence below which a frame counts as obstructed (MediaPipe's own detection threshold).
MIN_PRESENCE_SCORE = 0.5
#: Share of skin-coloured pixels in the ROI below which a frame counts as obstructed.
MIN_SKIN_FRACTION = 0.5
#: A pixel is the person's skin when its Cr and Cb each lie within this of the face's median (YCrCb units).
SKIN_CHROMA_RADIUS = 12.0
#: The face's median chrominance must look like skin under some light: red over blue (Cr - Cb at least this)
#: and Cr at least :data:`SKIN_MIN_CR`; a grey, white, blue or green cover fails and the whole ROI is "covered".
SKIN_MIN_CR_MINUS_CB = 3.0
SKIN_MIN_CR = 126.0
#: Pixels darker than this fraction of the ROI's median luma (hair, brows, glasses frames, shadow) or brighter
#: than :data:`GLARE_LUMA` are not skin.
DARK_LUMA_FRACTION = 0.45
GLARE_LUMA = 250
#: Share of face frames that may be obstructed before the report says so.
MAX_OBSTRUCTED_SHARE = 0.2


@dataclass(frozen=True)
class FaceQuality:
    """Presence and obstruction over a clip (or a live window)."""

    face_detected_ratio: float   # frames with a face / all frames
    obstruction: float           # share of face frames that were obstructed, 0..1
    message: str | None          # what the user should do, or None when all is well


def roi_skin_fraction(image_bgr: np.ndarray, face: FaceObservation | np.ndarray) -> float:
    """Share (0..1) of the forehead and cheek pixels that look like this person's skin (:func:`skin_share`).

    Hair, glasses frames, a hand's shadow, a scarf or a mask over part of the ROI fall outside; the camera's
    white balance, the light's colour and the person's skin tone do not. A cloth of skin-like colour is skin to
    this test (as to any colour test).
    """
    landmarks = face.landmarks_px if isinstance(face, FaceObservation) else np.asarray(face)
    height, width = image_bgr.shape[:2]
    polygons = region_polygons(landmarks)
    points = np.concatenate(polygons)
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int) + 1, 1, [width, height])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    inside = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.fillPoly(inside, [np.round(p - [x0, y0]).astype(np.int32) for p in polygons], 255)
    return _masked_skin_share(cv2.cvtColor(image_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2YCrCb), inside)


def _masked_skin_share(ycrcb: np.ndarray, inside: np.ndarray) -> float:
    """:func:`skin_share` of the pixels of an (h, w, 3) uint8 YCrCb image where ``inside`` (0/255) is set, with
    OpenCV's masked histograms and ranges (the same value, several times faster than indexing the pixels out)."""
    n = cv2.countNonZero(inside)
    if n == 0:
        return 0.0
    luma, cr, cb = cv2.split(ycrcb)
    lit = cv2.bitwise_and(cv2.inRange(luma, math.ceil(DARK_LUMA_FRACTION * masked_median(luma, inside, n)),
                                      GLARE_LUMA), inside)
    lit_count = cv2.countNonZero(lit)
    if lit_count == 0:
        return 0.0
    skin = cv2.inRange(ycrcb, (0, SKIN_CR_RANGE[0], SKIN_CB_RANGE[0]), (255, SKIN_CR_RANGE[1], SKIN_CB_RANGE[1]))
    cr_ref, cb_ref = masked_median(cr, lit, lit_count), masked_median(cb, lit, lit_count)
    if cr_ref >= SKIN_MIN_CR and cr_ref - cb_ref >= SKIN_MIN_CR_MINUS_CB:
        near = cv2.inRange(ycrcb, (0, math.ceil(cr_ref - SKIN_CHROMA_RADIUS), math.ceil(cb_ref - SKIN_CHROMA_RADIUS)),
                           (255, math.floor(cr_ref + SKIN_CHROMA_RADIUS), math.floor(cb_ref + SKIN_CHROMA_RADIUS)))
        skin = cv2.bitwise_or(skin, near)
    return cv2.countNonZero(cv2.bitwise_and(lit, skin)) / n


def skin_share(ycrcb: np.ndarray) -> float:
    """Share (0..1) of YCrCb pixels (shape (n, 3)) that look like skin, in any light.

    A pixel is skin when it is neither dark (below :data:`DARK_LUMA_FRACTION` of the median luma) nor glare, and
    its chrominance lies in the pulse ROI's skin box (Chai & Ngan, white-ish light) *or* within
    :data:`SKIN_CHROMA_RADIUS` of the pixels' own median chrominance, when that median is skin-like
    (:data:`SKIN_MIN_CR`, :data:`SKIN_MIN_CR_MINUS_CB`): the second test keeps a face under a bluish white
    balance or a dim warm lamp, which the box alone rejects.
    """
    pixels = np.asarray(ycrcb)
    median = uint8_median if pixels.dtype == np.uint8 else np.median  # uint8 (a frame's YCrCb): histograms
    pixels = pixels.reshape(-1, 3) if pixels.dtype == np.uint8 else pixels.astype(np.float32).reshape(-1, 3)
    if len(pixels) == 0:
        return 0.0
    luma = pixels[:, 0]
    lit = (luma >= DARK_LUMA_FRACTION * median(luma)) & (luma <= GLARE_LUMA)
    if not lit.any():
        return 0.0
    cr, cb = pixels[:, 1], pixels[:, 2]
    skin = (cr >= SKIN_CR_RANGE[0]) & (cr <= SKIN_CR_RANGE[1]) & (cb >= SKIN_CB_RANGE[0]) & (cb <= SKIN_CB_RANGE[1])
    cr_ref, cb_ref = median(cr[lit]), median(cb[lit])
    if cr_ref >= SKIN_MIN_CR and cr_ref - cb_ref >= SKIN_MIN_CR_MINUS_CB:
        skin |= (np.abs(cr - cr_ref) <= SKIN_CHROMA_RADIUS) & (np.abs(cb - cb_ref) <= SKIN_CHROMA_RADIUS)
    return float(np.count_nonzero(lit & skin) / len(pixels))


def frame_obstructed(presence_score: float | np.ndarray, skin_fraction: float | np.ndarray) -> np.ndarray:
    """Whether face frames are obstructed: low detector confidence, or too little (or unmeasured, NaN) skin in
    the ROI. Scalars or arrays of the same shape; a bool array (0-d for scalars)."""
    presence = np.asarray(presence_score, dtype=np.float64)
    skin = np.nan_to_num(np.asarray(skin_fraction, dtype=np.float64), nan=0.0)
    return (presence < MIN_PRESENCE_SCORE) | (skin < MIN_SKIN_FRACTION)


def presence_message(presence_score: float | None, skin_fraction: float | None = None) -> str | None:
    """A clear instruction for one frame, or None when the face is well in view."""
    if presence_score is None:
        return "No face in view: look at the mirror."
    if presence_score < MIN_PRESENCE_SCORE:
        return (f"Face hard to see (detector confidence {presence_score:.2f} < {MIN_PRESENCE_SCORE:.2f}): "
                "uncover your face, look straight at the mirror, and add light if the room is dark.")
    if skin_fraction is not None and skin_fraction < MIN_SKIN_FRACTION:
        return "Forehead or cheeks covered (hair, hands, glare): uncover them for the vitals."
    return None


def face_quality(face_found: np.ndarray, presence_scores: np.ndarray, skin_fractions: np.ndarray) -> FaceQuality:
    """Clip-level presence and obstruction from per-frame values (presence and skin NaN where no face)."""
    face_found = np.asarray(face_found, dtype=bool)
    frames = len(face_found)
    if frames == 0:
        return FaceQuality(0.0, 0.0, "The video has no frames.")
    ratio = float(face_found.mean())
    if not face_found.any():
        return FaceQuality(0.0, 0.0, "No face found in the video: face the camera in good light.")
    presence = np.asarray(presence_scores, dtype=np.float64)[face_found]
    skin = np.asarray(skin_fractions, dtype=np.float64)[face_found]
    obstructed = frame_obstructed(presence, skin)
    share = float(obstructed.mean())
    message = None
    if share > MAX_OBSTRUCTED_SHARE:
        if np.median(presence) < MIN_PRESENCE_SCORE:
            message = presence_message(float(np.median(presence)))
        else:
            message = presence_message(1.0, float(np.nanmedian(skin)))
    elif ratio < 0.8:
        message = f"The face was in view only {100 * ratio:.0f}% of the time: stay in front of the mirror."
    return FaceQuality(round(ratio, 3), round(share, 3), message)


def pulse_liveness(readings: list[HeartRateReading]) -> bool | None:
    """True when the windows show a pulse with the blood-volume colour signature; None without any window.

    Live means the median window confidence (SNR times colour signature) reaches the heart-rate gate.
    """
    if not readings:
        return None
    confidence = float(np.median([r.confidence for r in readings]))
    return bool(confidence >= CONFIDENCE_GATE)


#: Facial-motion liveness: an eye aspect ratio below this share of its median over the window is a blink
#: (FaceMesh on a still or printed face keeps it within about 15 % of its median).
BLINK_EAR_RATIO = 0.6
#: ... or a spread (95th - 5th percentile) of the mouth aspect ratio at least this (speech, a yawn, a smile).
MOUTH_MAR_SPREAD = 0.12
#: Seconds of face frames before the facial-motion cue answers.
MIN_MOTION_S = 3.0


class FaceMotionLiveness:
    """Blinks and mouth movement over the last ``window_s`` seconds of face frames: the motion cue of liveness.

    ``update`` takes each frame's face (or None); :meth:`live` is True once a blink (the eye aspect ratio below
    :data:`BLINK_EAR_RATIO` of its median) or a moving mouth (MAR spread at least :data:`MOUTH_MAR_SPREAD`) was
    seen in the window, False when the window holds at least :data:`MIN_MOTION_S` seconds of a face without
    either, and None before that.
    """

    def __init__(self, window_s: float = 30.0):
        self.window_s = window_s
        self._samples: deque[tuple[float, float, float]] = deque()  # (t, ear, mar)

    def reset(self) -> None:
        self._samples.clear()

    def update(self, t: float, face: FaceObservation | None) -> None:
        """Consume one frame at ``t`` seconds."""
        if face is not None:
            landmarks = face.landmarks_px
            self._samples.append((float(t), eye_openness(landmarks), mouth_aspect_ratio(landmarks)))
        while self._samples and self._samples[0][0] < t - self.window_s:
            self._samples.popleft()

    def evidence(self) -> dict[str, float | int | None]:
        """``{"blink_frames": frames with a blink-deep eye closure, "mouth_spread": MAR spread, "face_s": seconds}``."""
        if len(self._samples) < 2:
            return {"blink_frames": None, "mouth_spread": None, "face_s": 0.0}
        samples = np.array(self._samples, dtype=np.float64)
        ear, mar = samples[:, 1], samples[:, 2]
        spread = float(np.percentile(mar, 95) - np.percentile(mar, 5))
        return {"blink_frames": int(np.count_nonzero(ear < BLINK_EAR_RATIO * np.median(ear))),
                "mouth_spread": round(spread, 3), "face_s": round(float(samples[-1, 0] - samples[0, 0]), 2)}

    def live(self) -> bool | None:
        """True when the face blinked or moved its mouth in the window; None before :data:`MIN_MOTION_S`."""
        evidence = self.evidence()
        if evidence["face_s"] < MIN_MOTION_S:
            return None
        return bool(evidence["blink_frames"] or evidence["mouth_spread"] >= MOUTH_MAR_SPREAD)


def combined_liveness(pulse: bool | None, motion: bool | None) -> bool | None:
    """Live when either cue says so; False when a cue answered and none said live; None when neither answered."""
    if pulse is None and motion is None:
        return None
    return bool(pulse) or bool(motion)
