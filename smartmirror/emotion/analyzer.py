"""EmotionAnalyzer: per-frame emotion from the tracked face, with "tired" fusion, smoothing and hysteresis.

Per frame: eye-levelled face crop -> model probabilities (7 FER classes for the bundled model) -> "tired" fused
from the fatigue analyzer's state -> valence/arousal (the model's heads when it has them, else the circumplex
mapping of ``smartmirror.emotion.labels``) -> ~1 s exponential smoothing -> label hysteresis.
The clip summary averages the unsmoothed per-frame (fused) probabilities over frames with a face.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.emotion.fusion import fuse_tired, fuse_valence_arousal, tired_evidence
from smartmirror.emotion.inference import EmotionPredictor
from smartmirror.emotion.labels import EMOTION_LABELS, valence_arousal
from smartmirror.emotion.smoothing import LabelSmoother
from smartmirror.emotion.spec import resolve_model_spec
from smartmirror.emotion.state import EmotionState
from smartmirror.face import FaceObservation
from smartmirror.fatigue.state import FatigueState
from smartmirror.frames import FramePacket

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _cached_predictor(spec: str, file_version: int | None) -> EmotionPredictor:
    return EmotionPredictor(spec)


def shared_predictor(spec: str) -> EmotionPredictor:
    """One loaded predictor per model spec, shared by analyzers and ``predict_face`` (thread-safe inference).

    A checkpoint path is reloaded when the file changes (a retrained ``best.pt`` at the same path).
    """
    path = Path(spec).expanduser()
    version = path.stat().st_mtime_ns if path.suffix in {".pt", ".pth"} and path.is_file() else None
    return _cached_predictor(spec, version)


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
    return shared_predictor(resolve_model_spec(model)).predict_image(face_image).probabilities


def ordered_probabilities(probabilities: Mapping[str, float], digits: int = 4) -> dict[str, float]:
    """Probabilities in EMOTION_LABELS order (unknown classes after), rounded for JSON."""
    known = [label for label in EMOTION_LABELS if label in probabilities]
    extra = sorted(label for label in probabilities if label not in EMOTION_LABELS)
    return {label: round(float(probabilities[label]), digits) for label in known + extra}


class EmotionAnalyzer:
    """Emotion of the tracked face over time (the Analyzer protocol).

    Parameters
    ----------
    model : str or None
        Registered model name or trained checkpoint path; None uses ``$SMARTMIRROR_EMOTION_MODEL`` or the bundled
        ensemble (``emotion_ensemble``).
    smoothing_s : float
        Time constant of the probability smoothing, seconds.
    switch_margin : float
        Smoothed-probability lead a new label needs before it is shown.
    hold_s : float
        Seconds the lead must last before the shown label switches.
    face_gap_reset_s : float
        After this many seconds without a face the smoothing restarts (likely a different person).
    """

    name = "emotion"

    def __init__(
        self,
        model: str | Path | None = None,
        smoothing_s: float = 1.0,
        switch_margin: float = 0.1,
        hold_s: float = 0.5,
        face_gap_reset_s: float = 2.0,
    ):
        # loading happens here, when the analyzer is built (in the pipeline's factory), not on its first face;
        # importing this module stays free of torch. The default ensemble's ONNX session takes tens of ms and no
        # torch; any other model needs torch and the networks, seconds to import (the model loads on first use).
        predictor = shared_predictor(resolve_model_spec(model))
        if predictor.onnx_path is not None:
            predictor.load()
        else:
            import smartmirror.emotion.catalog  # noqa: F401

        self.model = model
        self.smoothing_s = smoothing_s
        self.switch_margin = switch_margin
        self.hold_s = hold_s
        self.face_gap_reset_s = face_gap_reset_s

    @property
    def predictor(self) -> EmotionPredictor:
        """The loaded model (shared between analyzers using the same model)."""
        return shared_predictor(resolve_model_spec(self.model))

    def reset(self) -> None:
        """Forget earlier frames (smoothing, shown label, clip sums)."""
        if self.face_gap_reset_s < 0:
            raise ValueError(f"face_gap_reset_s must be >= 0, got {self.face_gap_reset_s!r}")
        self.smoother_ = LabelSmoother(self.smoothing_s, self.switch_margin, self.hold_s)
        self.smoother_.reset()
        self.state_: EmotionState | None = None
        self.last_face_t_: float | None = None
        self.frames_ = 0
        self.probability_sums_: dict[str, float] = {}
        self.valence_sum_ = 0.0
        self.arousal_sum_ = 0.0

    def update(
        self,
        packet: FramePacket,
        face: FaceObservation | None,
        fatigue_state: FatigueState | None = None,
    ) -> EmotionState | None:
        """Consume one frame; returns the live state (:class:`~smartmirror.emotion.state.EmotionState`) or None
        before the first face.

        ``fatigue_state`` is the fatigue analyzer's latest state for the same frame (for the class "tired").
        """
        if not hasattr(self, "smoother_"):
            self.reset()
        crop = None
        if face is not None:
            try:
                crop = self.predictor.crop(packet.image, face)
            except ValueError as exc:  # face too small to read
                log.debug("emotion: skipping face: %s", exc)
        if crop is None:
            return self._no_face(packet.t)
        if self.last_face_t_ is not None and packet.t - self.last_face_t_ > self.face_gap_reset_s:
            self.smoother_.reset()
        self.last_face_t_ = packet.t

        predictor = self.predictor
        if predictor.flip_tta:
            # the ensemble's mirror-image pass, spread over time: every other frame shows the model the mirrored
            # face, so the ~1 s smoothing and the clip mean average both views at half the cost per frame
            mirrored = self.frames_ % 2 == 1
            prediction = predictor.predict_image(np.ascontiguousarray(crop[:, ::-1]) if mirrored else crop, flip=False)
        else:
            prediction = predictor.predict_image(crop)
        evidence = tired_evidence(fatigue_state)
        fused, share = fuse_tired(prediction.probabilities, evidence)
        if prediction.valence is not None and prediction.arousal is not None:
            valence, arousal = prediction.valence, prediction.arousal
        else:
            valence, arousal = valence_arousal(prediction.probabilities)
        valence, arousal = fuse_valence_arousal(valence, arousal, share)

        self.frames_ += 1
        for label, p in fused.items():
            self.probability_sums_[label] = self.probability_sums_.get(label, 0.0) + p
        self.valence_sum_ += valence
        self.arousal_sum_ += arousal

        smoothed = self.smoother_.update(packet.t, fused, {"valence": valence, "arousal": arousal})
        self.state_ = EmotionState(
            face_present=True,
            label=smoothed.label,
            confidence=round(smoothed.confidence, 4),
            probabilities=ordered_probabilities(smoothed.probabilities),
            valence=round(smoothed.values["valence"], 4),
            arousal=round(smoothed.values["arousal"], 4),
            raw_label=max(fused, key=fused.__getitem__),
            tired_evidence=None if evidence is None else round(evidence, 4),
            t=float(packet.t),
        )
        return self.state_

    def _no_face(self, t: float) -> EmotionState | None:
        if self.state_ is None:
            return None
        if self.last_face_t_ is not None and t - self.last_face_t_ > self.face_gap_reset_s:
            self.smoother_.reset()
        return dataclasses.replace(self.state_, face_present=False, t=float(t))

    def summary(self) -> dict[str, Any] | None:
        """Clip-level emotion: {label, confidence, probabilities, valence, arousal}; None without any face."""
        if not getattr(self, "frames_", 0):
            return None
        mean = {label: total / self.frames_ for label, total in self.probability_sums_.items()}
        label = max(mean, key=mean.__getitem__)
        return {
            "label": label,
            "confidence": round(mean[label], 4),
            "probabilities": ordered_probabilities(mean),
            "valence": round(min(max(self.valence_sum_ / self.frames_, -1.0), 1.0), 4),
            "arousal": round(min(max(self.arousal_sum_ / self.frames_, -1.0), 1.0), 4),
        }
