"""Emotion: a bundled ensemble (FER2013 mini-Xception + face-api.js FaceExpressionNet), "tired" from fatigue,
valence/arousal, smoothing.

Public names (imported on first use, so ``import smartmirror.emotion`` stays light):

- ``EmotionAnalyzer``: the Analyzer for live frames and clip reports;
- ``predict_face(face_image, model=None) -> dict[str, float]``: class probabilities for an already-cropped face;
- ``create_model``, ``list_models``, ``load_model``, ``register_model``, ``ModelCfg``: the model registry;
- ``EmotionPredictor``, ``crop_face``, ``valence_arousal``, ``EMOTION_LABELS``, ``FER_LABELS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from smartmirror.emotion.labels import EMOTION_LABELS, FER_LABELS, valence_arousal

_LAZY = {
    "EmotionAnalyzer": "smartmirror.emotion.analyzer",
    "EmotionPredictor": "smartmirror.emotion.inference",
    "EmotionPrediction": "smartmirror.emotion.inference",
    "crop_face": "smartmirror.emotion.crop",
    "ModelCfg": "smartmirror.emotion.model",
    "create_model": "smartmirror.emotion.model",
    "list_models": "smartmirror.emotion.model",
    "load_model": "smartmirror.emotion.model",
    "register_model": "smartmirror.emotion.model",
    "NovelEmotionModel": "smartmirror.emotion.novel",
}

__all__ = ["EMOTION_LABELS", "FER_LABELS", "predict_face", "valence_arousal", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smartmirror.emotion' has no attribute {name!r}")


def predict_face(face_image: Any, model: str | Path | None = None) -> dict[str, float]:
    """Class probabilities for one already-cropped face.

    Parameters
    ----------
    face_image : ndarray or path
        Grey (h, w) or BGR (h, w, 3) uint8 image of a face (any size; resized to the model's input), or a file.
    model : str, Path or None
        Registered model name or trained checkpoint; None uses ``$SMARTMIRROR_EMOTION_MODEL`` or the bundled
        ensemble ``emotion_ensemble`` (classes angry, disgust, fear, happy, sad, surprise, neutral).

    Returns
    -------
    dict of str to float
        Probability per class of the model (sums to 1).

    Raises
    ------
    ValueError
        Not an image, too small, or an unknown model.
    """
    from smartmirror.emotion.analyzer import shared_predictor
    from smartmirror.emotion.model import resolve_model_spec

    return shared_predictor(resolve_model_spec(model)).predict_image(face_image).probabilities
