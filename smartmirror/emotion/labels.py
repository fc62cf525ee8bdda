"""Emotion label sets and the valence/arousal circumplex mapping (pure numpy, no torch).

Valence and arousal come from class probabilities through Russell's circumplex of affect: each class sits on the
unit circle at the angle Russell (1980) measured for its nearest affect word (0 deg = pleasure, 90 deg = arousal),
"neutral" sits at the centre, and a probability vector maps to the probability-weighted mean of the class points.
The result lies in the unit disc, so valence and arousal are each in [-1, 1]; a confident "happy" gives
(0.99, 0.14), a confident "angry" (-0.16, 0.99), a 50/50 happy/sad mix lands near (0.05, -0.16).

References
----------
Russell, J. A. (1980). A circumplex model of affect. Journal of Personality and Social Psychology 39(6), 1161-1178.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

#: The seven FER2013 classes, in the order of the bundled model's outputs.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: The eight emotion classes (the FER seven plus "tired"), in the trainable model's output order.
EMOTION_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "surprise", "disgust", "fear", "tired")

TIRED = "tired"

#: Circumplex angle in degrees (Russell 1980) of each class's nearest affect word; None = centre (no affect).
CIRCUMPLEX_ANGLE_DEG: dict[str, float | None] = {
    "happy": 7.8,  # "happy"
    "surprise": 69.8,  # "astonished"
    "angry": 99.0,  # "angry"
    "fear": 116.0,  # "afraid"
    "disgust": 138.0,  # not among Russell's words: placed with "distressed" (unpleasant, moderately aroused)
    "contempt": 123.0,  # not among Russell's words: placed with "annoyed" (AffectNet's 8th class)
    "sad": 207.5,  # "sad"
    "tired": 267.7,  # "tired"
    "neutral": None,
}

#: Common spellings in datasets (folder names, YOLO data.yaml names) mapped to our label names.
LABEL_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "tired": "tired",
    "tiredness": "tired",
    "sleepy": "tired",
    "drowsy": "tired",
    "fatigue": "tired",
    "fatigued": "tired",
}


def normalize_label(name: str) -> str:
    """Lower-case a dataset's class name and map common spellings to ours ("Anger" -> "angry")."""
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    return LABEL_ALIASES.get(key, key)


def circumplex_point(label: str) -> tuple[float, float]:
    """(valence, arousal) of one class on the unit circle; (0, 0) for neutral or an unknown class."""
    angle = CIRCUMPLEX_ANGLE_DEG.get(label)
    if angle is None:
        return 0.0, 0.0
    radians = math.radians(angle)
    return math.cos(radians), math.sin(radians)


def circumplex_matrix(labels: Iterable[str]) -> np.ndarray:
    """(n_labels, 2) array of (valence, arousal) points, one row per label."""
    return np.array([circumplex_point(label) for label in labels], dtype=np.float64).reshape(-1, 2)


def valence_arousal(probabilities: Mapping[str, float]) -> tuple[float, float]:
    """Map class probabilities to (valence, arousal), each in [-1, 1], by the circumplex mean.

    Parameters
    ----------
    probabilities : mapping of label to probability
        Need not be normalised; negative values are treated as 0. All-zero input gives (0, 0).
    """
    labels = list(probabilities)
    weights = np.clip(np.array([float(probabilities[k]) for k in labels], dtype=np.float64), 0.0, None)
    total = weights.sum()
    if total <= 0 or not np.isfinite(total):
        return 0.0, 0.0
    valence, arousal = (weights / total) @ circumplex_matrix(labels)
    return float(np.clip(valence, -1.0, 1.0)), float(np.clip(arousal, -1.0, 1.0))
