"""Signal quality: face presence and obstruction per frame, and pulse-based liveness.

Obstruction follows seed 004: the face detector's confidence drops when a hand, a mask or an object covers the
face, and below :data:`MIN_PRESENCE_SCORE` (0.9) the frame is called obstructed. The skin ROI tells the same from
the inside: when fewer than :data:`MIN_SKIN_FRACTION` of the forehead and cheek pixels look like skin, something
covers them. Either way the user gets a clear message instead of silently wrong numbers.

Liveness: living skin pulses, and its colour varies along the blood-volume direction (green most, red least,
see :class:`smartmirror.vitals.heart.PulseSignature`). A photo, a print or a screen held to the camera has
no such variation, so its heart-rate confidence stays below the gate and ``liveness`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartmirror.vitals.heart import CONFIDENCE_GATE, HeartRateReading

#: Face-detector confidence below which a frame counts as obstructed (seed 004's rule).
MIN_PRESENCE_SCORE = 0.9
#: Share of skin-coloured pixels in the ROI below which a frame counts as obstructed.
MIN_SKIN_FRACTION = 0.5
#: Share of face frames that may be obstructed before the report says so.
MAX_OBSTRUCTED_SHARE = 0.2


@dataclass(frozen=True)
class FaceQuality:
    """Presence and obstruction over a clip (or a live window)."""

    face_detected_ratio: float   # frames with a face / all frames
    obstruction: float           # share of face frames that were obstructed, 0..1
    message: str | None          # what the user should do, or None when all is well


def frame_obstructed(presence_score: float, skin_fraction: float) -> bool:
    """Whether one face frame is obstructed (low detector confidence or too little skin in the ROI)."""
    return presence_score < MIN_PRESENCE_SCORE or skin_fraction < MIN_SKIN_FRACTION


def presence_message(presence_score: float | None, skin_fraction: float | None = None) -> str | None:
    """A clear instruction for one frame, or None when the face is well in view."""
    if presence_score is None:
        return "No face in view: look at the mirror."
    if presence_score < MIN_PRESENCE_SCORE:
        return (f"Face partly covered or out of view (detector confidence {presence_score:.2f} < "
                f"{MIN_PRESENCE_SCORE:.2f}): uncover your face and look straight at the mirror.")
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
    obstructed = (presence < MIN_PRESENCE_SCORE) | ~(np.nan_to_num(skin, nan=0.0) >= MIN_SKIN_FRACTION)
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
