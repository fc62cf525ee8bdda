"""Stress level (low / moderate / high) and score 0..100, with the basis that was used.

In order of preference:

1. ``basis="hrv"``: Baevsky's stress index (needs >= 30 s of clean beats). Its classic reading (rest 50-150,
   sympathetic strain 150-500, overstrain above 500) is mapped log-linearly onto the same score bands as the
   heart-rate bands: 50 -> 0, 150 -> 33, 500 -> 83, 900 -> 100.
2. ``basis="heart_rate_baseline"``: heart rate above the person's resting rate (known, or learned in a long
   session): +0..10 beats/min -> 0..33 (low), +10..25 -> 33..83 (moderate), +25..40 -> 83..100 (high).
3. ``basis="heart_rate_bands"``: the documented cold-start fallback, fixed bands on the heart rate alone:
   60-80 beats/min low (0-33), 80-100 moderate (33-83), above 100 high (83-100, full at 120).

A wellness indication, not a diagnosis: a brisk walk raises the heart rate without any stress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LOW_MAX_SCORE = 100.0 / 3.0
MODERATE_MAX_SCORE = 83.0


@dataclass(frozen=True)
class StressEstimate:
    """The report's ``stress`` section."""

    level: str       # "low" | "moderate" | "high"
    score: float     # 0..100
    basis: str       # "hrv" | "heart_rate_baseline" | "heart_rate_bands"

    def report(self) -> dict:
        return asdict(self)


def _piecewise(value: float, knots: tuple[float, ...], scores: tuple[float, ...]) -> float:
    return float(np.clip(np.interp(value, knots, scores), 0.0, 100.0))


def level_of(score: float) -> str:
    """The level for a score: below 33.3 low, below 83 moderate, else high."""
    if score < LOW_MAX_SCORE:
        return "low"
    return "moderate" if score < MODERATE_MAX_SCORE else "high"


def stress_from_index(stress_index: float) -> StressEstimate:
    """Score from Baevsky's stress index (log-linear between the classic thresholds)."""
    value = np.log(max(stress_index, 1e-6))
    score = _piecewise(value, tuple(np.log([50.0, 150.0, 500.0, 900.0])), (0.0, LOW_MAX_SCORE, MODERATE_MAX_SCORE,
                                                                          100.0))
    return StressEstimate(level_of(score), round(score, 1), "hrv")


def stress_from_heart_rate(heart_rate_bpm: float, resting_heart_rate_bpm: float | None = None) -> StressEstimate:
    """Score from the heart rate: against the resting rate when known, else the fixed heart-rate bands."""
    if resting_heart_rate_bpm is not None:
        delta = heart_rate_bpm - resting_heart_rate_bpm
        score = _piecewise(delta, (0.0, 10.0, 25.0, 40.0), (0.0, LOW_MAX_SCORE, MODERATE_MAX_SCORE, 100.0))
        return StressEstimate(level_of(score), round(score, 1), "heart_rate_baseline")
    score = _piecewise(heart_rate_bpm, (60.0, 80.0, 100.0, 120.0), (0.0, LOW_MAX_SCORE, MODERATE_MAX_SCORE, 100.0))
    return StressEstimate(level_of(score), round(score, 1), "heart_rate_bands")


def estimate_stress(
    *, stress_index: float | None, heart_rate_bpm: float | None, resting_heart_rate_bpm: float | None = None
) -> StressEstimate | None:
    """The best available stress estimate (HRV, else heart rate vs baseline, else bands); None without data."""
    if stress_index is not None and np.isfinite(stress_index):
        return stress_from_index(stress_index)
    if heart_rate_bpm is not None:
        return stress_from_heart_rate(heart_rate_bpm, resting_heart_rate_bpm)
    return None


class RestingHeartRate:
    """Learns a person's resting heart rate in a long session: the 10th percentile of confident readings.

    Parameters
    ----------
    min_readings : int
        Confident readings (about one per second) before a baseline is given.
    max_readings : int
        Readings kept (bounded memory).
    """

    def __init__(self, min_readings: int = 120, max_readings: int = 3600):
        self.min_readings = min_readings
        self.max_readings = max_readings
        self.reset()

    def reset(self) -> None:
        self.readings_: list[float] = []

    def add(self, heart_rate_bpm: float | None) -> None:
        if heart_rate_bpm is None:
            return
        self.readings_.append(float(heart_rate_bpm))
        if len(self.readings_) > self.max_readings:
            del self.readings_[: len(self.readings_) - self.max_readings]

    @property
    def resting_bpm(self) -> float | None:
        if len(self.readings_) < self.min_readings:
            return None
        return float(np.percentile(self.readings_, 10))
