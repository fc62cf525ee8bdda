"""Fatigue: eye aspect ratio, blinks, PERCLOS, microsleeps, yawns, nods and head pose, calibrated per person.

    analyzer = FatigueAnalyzer(mode="wellness")        # or "driver" (immediate alerts), "kiosk"
    state = analyzer.update(packet, face)               # live state: face_present, perclos, microsleep, alert, ...
    section = analyzer.summary()                        # the report's "fatigue" section

The shipped drowsiness is a transparent scoring (:mod:`smartmirror.fatigue.model`); the 5-feature drowsiness MLP is
trained with ``smartmirror train fatigue DIR`` and used only when its file is passed (``mlp_path=``).
"""

from smartmirror.fatigue.analyzer import MODES, FatigueAnalyzer
from smartmirror.fatigue.features import (
    LEFT_EYE_EAR,
    MLP_FEATURE_NAMES,
    RIGHT_EYE_EAR,
    FatigueFeatures,
    eye_aspect_ratio,
    fatigue_features,
    mouth_aspect_ratio,
)
from smartmirror.fatigue.mlp import FatigueMLP, FatigueModelError, load_mlp, save_mlp, train_mlp
from smartmirror.fatigue.model import SCORE_TERMS, DrowsinessScore, FatigueMeasures, drowsiness_score

__all__ = [
    "LEFT_EYE_EAR",
    "MLP_FEATURE_NAMES",
    "MODES",
    "RIGHT_EYE_EAR",
    "SCORE_TERMS",
    "DrowsinessScore",
    "FatigueAnalyzer",
    "FatigueFeatures",
    "FatigueMLP",
    "FatigueMeasures",
    "FatigueModelError",
    "drowsiness_score",
    "eye_aspect_ratio",
    "fatigue_features",
    "load_mlp",
    "mouth_aspect_ratio",
    "save_mlp",
    "train_mlp",
]
