"""Emotion: a bundled ensemble (FER2013 mini-Xception + face-api.js FaceExpressionNet), "tired" from fatigue,
valence/arousal, smoothing.

Public names (importing them loads no torch; building an EmotionAnalyzer or loading a model loads the model:
the default ensemble's ONNX export in onnxruntime, without torch, when weights/ holds it; torch otherwise):

- ``EmotionAnalyzer``: the Analyzer for live frames and clip reports;
- ``predict_face(face_image, model=None) -> dict[str, float]``: class probabilities for an already-cropped face;
- ``EmotionPredictor``, ``EmotionPrediction``, ``crop_face``, ``valence_arousal``, ``EMOTION_LABELS``,
  ``FER_LABELS``.

The networks and their registry need torch at import and live in their modules: ``create_model``,
``list_models``, ``load_model`` in :mod:`smartmirror.emotion.catalog` (every model by name), ``register_model``,
the mini-Xception in :mod:`smartmirror.emotion.model` (``ModelCfg``, the input contract, lives in the torch-free
:mod:`smartmirror.emotion.cfg`), ``NovelEmotionModel`` in :mod:`smartmirror.emotion.novel`.
"""

from smartmirror.emotion.analyzer import EmotionAnalyzer, predict_face
from smartmirror.emotion.crop import crop_face
from smartmirror.emotion.inference import EmotionPrediction, EmotionPredictor
from smartmirror.emotion.labels import EMOTION_LABELS, FER_LABELS, valence_arousal

__all__ = [
    "EMOTION_LABELS",
    "FER_LABELS",
    "EmotionAnalyzer",
    "EmotionPrediction",
    "EmotionPredictor",
    "crop_face",
    "predict_face",
    "valence_arousal",
]
