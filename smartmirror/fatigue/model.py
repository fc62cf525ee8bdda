"""Drowsiness from the fatigue measures: the shipped transparent scoring.

The default (``method="rules"``) is a documented scoring, not a trained model. No copy of the Driver Drowsiness
Dataset exists here, so no learned model is shipped; the drowsiness MLP (:mod:`smartmirror.fatigue.mlp`) can be
trained with ``smartmirror train fatigue DIR`` and is used only when its file is passed explicitly
(``FatigueAnalyzer(mlp_path=...)``).

The scoring
-----------
Each sign of drowsiness becomes an evidence value ``s`` in 0..1 by a linear ramp between two anchors, and the
evidences are combined as independent causes (a noisy-OR): ``p = 1 - prod(1 - w * s)``. One strong sign alone
reaches ``w``; several weak signs add up. Anchors and weights (:data:`SCORE_TERMS`):

=====================  ======================================  ============  =====  ==========================
term                   measure                                 s = 0 .. 1    w      basis
=====================  ======================================  ============  =====  ==========================
perclos                PERCLOS P80 over the last 60 s          0.075..0.15   0.85   Wierwille 1994: >= 0.15
                                                                                    drowsy, 0.075..0.15
                                                                                    questionable
microsleeps            P80 closures >= 0.5 s, per minute       0 .. 2        0.80   lapses; one alone gives
                                                                                    0.4 (driver mode alerts
                                                                                    on it regardless)
long_closures          closures >= 0.5 s, per minute           0 .. 3        0.50   eyelid closures > 0.5 s
                                                                                    rise with sleepiness
blink_duration         mean blink duration (50 % level)        0.25..0.45 s  0.45   Schleicher et al. 2008
blink_rate             blinks per minute                       25 .. 40      0.15   weak, inconsistent sign
yawns                  yawns per 5 minutes                     0 .. 3        0.55   yawning precedes sleep
nods                   head nods per 5 minutes                 0 .. 2        0.70   nodding off
=====================  ======================================  ============  =====  ==========================

Rates are taken over at least one minute (eyes) or five minutes (yawns, nods) so that one event in the first
seconds is not extrapolated into a high rate. The result is called ``drowsiness_probability`` in the report for
compatibility with earlier drowsiness bars; it is a score on a probability scale, not a fitted probability.

References
----------
Schleicher, R. et al. (2008). Blinks and saccades as indicators of fatigue in sleepiness warnings: looking tired?
Ergonomics 51(7). Wierwille et al. (1994), NHTSA DOT HS 808 247.
"""


from __future__ import annotations

import math
from dataclasses import dataclass, field

#: (term, low anchor, high anchor, weight); see the module docstring.
SCORE_TERMS: tuple[tuple[str, float, float, float], ...] = (
    ("perclos", 0.075, 0.15, 0.85),
    ("microsleeps", 0.0, 2.0, 0.80),
    ("long_closures", 0.0, 3.0, 0.50),
    ("blink_duration", 0.25, 0.45, 0.45),
    ("blink_rate", 25.0, 40.0, 0.15),
    ("yawns", 0.0, 3.0, 0.55),
    ("nods", 0.0, 2.0, 0.70),
)

#: Fewest blinks before their mean duration counts as evidence.
MIN_BLINKS_FOR_DURATION = 3


@dataclass(frozen=True)
class FatigueMeasures:
    """What the scoring reads, over one window (live: the trailing window; report: the whole clip).

    Attributes
    ----------
    perclos : float or None
        Share of time with eyes >= 80 % closed, 0..1.
    blinks_per_min : float or None
        Blink rate, blinks/minute.
    mean_blink_duration_s : float or None
        Mean duration of the blinks in the window, seconds.
    blink_count : int
        Blinks in the window.
    microsleeps, long_closures : int
        Events in the eye window.
    eye_window_s : float
        Face time (seconds) the eye counts cover.
    yawns, nods : int
        Events in the slow window.
    slow_window_s : float
        Face time (seconds) the yawn and nod counts cover.
    """

    perclos: float | None
    blinks_per_min: float | None
    mean_blink_duration_s: float | None
    blink_count: int
    microsleeps: int
    long_closures: int
    eye_window_s: float
    yawns: int
    nods: int
    slow_window_s: float


@dataclass(frozen=True)
class DrowsinessScore:
    """The scoring's result: ``probability`` 0..1 and each term's evidence 0..1 (``evidence[term]``)."""

    probability: float
    evidence: dict[str, float] = field(default_factory=dict)


def _ramp(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low)))


def drowsiness_score(measures: FatigueMeasures) -> DrowsinessScore:
    """The transparent drowsiness score (see the module docstring for every anchor and weight)."""
    eye_minutes = max(measures.eye_window_s / 60.0, 1.0)
    slow_five_minutes = max(measures.slow_window_s / 300.0, 1.0)
    values: dict[str, float | None] = {
        "perclos": measures.perclos,
        "microsleeps": measures.microsleeps / eye_minutes,
        "long_closures": measures.long_closures / eye_minutes,
        "blink_duration": (
            measures.mean_blink_duration_s if measures.blink_count >= MIN_BLINKS_FOR_DURATION else None
        ),
        "blink_rate": measures.blinks_per_min,
        "yawns": measures.yawns / slow_five_minutes,
        "nods": measures.nods / slow_five_minutes,
    }
    evidence: dict[str, float] = {}
    awake = 1.0
    for term, low, high, weight in SCORE_TERMS:
        value = values[term]
        s = 0.0 if value is None or not math.isfinite(value) else _ramp(value, low, high)
        evidence[term] = round(s, 4)
        awake *= 1.0 - weight * s
    return DrowsinessScore(probability=float(min(1.0, max(0.0, 1.0 - awake))), evidence=evidence)
