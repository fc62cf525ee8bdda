"""The live emotion state (what :meth:`smartmirror.emotion.analyzer.EmotionAnalyzer.update` returns); see
``docs/states.md`` for the JSON form."""

from __future__ import annotations

from dataclasses import dataclass

from smartmirror.analyzer import JsonState

__all__ = ["EmotionState", "EmotionSummary"]


@dataclass(frozen=True)
class EmotionState(JsonState):
    """The emotion shown after the latest frame (smoothed over about a second, with label hysteresis).

    Attributes
    ----------
    face_present : bool
        A usable face was in this frame (False: the last values stand, they are not new).
    label : str
        The shown class (one of ``probabilities``), switched only after a clear and lasting lead.
    confidence : float
        Smoothed probability 0..1 of ``label``.
    probabilities : dict of str to float
        Smoothed probability 0..1 per class, in the model's class order plus "tired"; sums to 1.
    valence, arousal : float
        Smoothed, -1..1 (unpleasant..pleasant, calm..excited).
    raw_label : str
        The most likely class of the last face frame alone.
    tired_evidence : float or None
        0..0.95 from the fatigue analyzer's drowsiness, or None when it had nothing to say.
    t : float
        Source time of the frame, seconds.
    """

    face_present: bool
    label: str
    confidence: float
    probabilities: dict[str, float]
    valence: float
    arousal: float
    raw_label: str
    tired_evidence: float | None
    t: float


@dataclass(frozen=True)
class EmotionSummary:
    """The clip report's ``emotion`` section (:meth:`smartmirror.emotion.analyzer.EmotionAnalyzer.summary`):
    the mean per-frame probabilities (0..1, the "tired" fusion included) over the face frames, their most likely
    ``label`` with its ``confidence``, and the mean ``valence`` and ``arousal`` (-1..1)."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    valence: float
    arousal: float
