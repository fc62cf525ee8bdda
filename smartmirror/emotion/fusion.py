"""The 8th class, "tired": fused from the fatigue analyzer's state (pure functions).

A face photo shows little of tiredness; eyelid closure over time does. The fatigue analyzer's drowsiness
probability ``d`` (0..1) becomes tired evidence

    e = 0.95 * clip((d - 0.3) / 0.5, 0, 1)        (e = 0.95 during a microsleep)

so an alert face (d <= 0.3) adds nothing, and a clearly drowsy one (d >= 0.8) makes "tired" carry 95 % of the
mass. The fused distribution takes ``p_tired = max(model's own tired, e)`` and scales every other class by the
same factor so the total stays 1; valence and arousal move toward the circumplex point of "tired" by the same
share (so for the circumplex mapping the fused point is exactly the circumplex of the fused probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from smartmirror.emotion.labels import TIRED, circumplex_point
from smartmirror.fatigue.state import FatigueState

#: Drowsiness probability at which tired evidence starts, and the span over which it reaches its maximum.
DROWSINESS_ONSET = 0.3
DROWSINESS_SPAN = 0.5
#: Most probability mass the fatigue evidence can give "tired".
MAX_TIRED_EVIDENCE = 0.95


def tired_evidence(fatigue_state: FatigueState | None) -> float | None:
    """Tired evidence 0..0.95 from the fatigue analyzer's latest state, or None when it has nothing to say.

    Uses ``drowsiness_probability`` and ``microsleep``; a state with ``face_present`` False gives None.
    """
    if fatigue_state is None or not fatigue_state.face_present:
        return None
    if fatigue_state.microsleep:
        return MAX_TIRED_EVIDENCE
    drowsiness = fatigue_state.drowsiness_probability
    if drowsiness is None or not math.isfinite(drowsiness):
        return None
    share = min(max((drowsiness - DROWSINESS_ONSET) / DROWSINESS_SPAN, 0.0), 1.0)
    return MAX_TIRED_EVIDENCE * share


def fuse_tired(probabilities: Mapping[str, float], evidence: float | None) -> tuple[dict[str, float], float]:
    """Add "tired" to a class distribution.

    Returns
    -------
    fused : dict
        The distribution with a "tired" entry (0 when there is no evidence and the model has no such class).
    share : float
        The weight ``s`` with ``fused = (1 - s) * model + s * onehot(tired)``, for moving valence and arousal.
    """
    fused = {label: float(p) for label, p in probabilities.items()}
    model_tired = fused.get(TIRED, 0.0)
    fused[TIRED] = model_tired
    if evidence is None or evidence <= model_tired:
        return fused, 0.0
    share = (evidence - model_tired) / max(1.0 - model_tired, 1e-12)
    for label in fused:
        fused[label] *= 1.0 - share
    fused[TIRED] = evidence
    return fused, share


def fuse_valence_arousal(valence: float, arousal: float, share: float) -> tuple[float, float]:
    """Move (valence, arousal) toward the circumplex point of "tired" by ``share`` (0..1)."""
    tired_valence, tired_arousal = circumplex_point(TIRED)
    return (1 - share) * valence + share * tired_valence, (1 - share) * arousal + share * tired_arousal
