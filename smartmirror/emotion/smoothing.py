"""Temporal smoothing of class probabilities and a hysteresis on the shown label (pure Python/numpy).

Smoothing is an exponential moving average on the source clock: a frame ``dt`` seconds after the previous one
gets weight ``1 - exp(-dt / time_constant_s)``, so the average spans about ``time_constant_s`` of video whatever
the frame rate (a dropped frame simply gets more weight). The shown label changes only when another class leads
the shown one by ``switch_margin`` in the smoothed probabilities and keeps that lead for ``hold_s`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SmoothedEmotion:
    """The smoothed view after one frame: shown label, smoothed probabilities and smoothed extra values."""

    label: str
    probabilities: dict[str, float]
    values: dict[str, float]

    @property
    def confidence(self) -> float:
        """Smoothed probability of the shown label."""
        return self.probabilities[self.label]


class LabelSmoother:
    """Exponential smoothing (source-clock time constant) plus label hysteresis.

    Parameters
    ----------
    time_constant_s : float
        EMA time constant in seconds (0 disables smoothing).
    switch_margin : float
        Smoothed-probability lead (0..1) a new label needs over the shown one.
    hold_s : float
        Seconds the lead must last before the shown label switches.
    """

    def __init__(self, time_constant_s: float = 1.0, switch_margin: float = 0.1, hold_s: float = 0.5):
        self.time_constant_s = time_constant_s
        self.switch_margin = switch_margin
        self.hold_s = hold_s

    def reset(self) -> None:
        """Forget the average and the shown label."""
        if self.time_constant_s < 0 or self.hold_s < 0 or not 0 <= self.switch_margin < 1:
            raise ValueError(
                "time_constant_s and hold_s must be >= 0 and switch_margin in [0, 1), got "
                f"{self.time_constant_s!r}, {self.hold_s!r}, {self.switch_margin!r}"
            )
        self.last_t_: float | None = None
        self.probabilities_: dict[str, float] = {}
        self.values_: dict[str, float] = {}
        self.label_: str | None = None
        self.pending_label_: str | None = None
        self.pending_since_: float = 0.0

    def _weight(self, t: float) -> float:
        if self.last_t_ is None or self.time_constant_s == 0:
            return 1.0
        dt = max(t - self.last_t_, 0.0)
        return 1.0 - math.exp(-dt / self.time_constant_s)

    def update(
        self, t: float, probabilities: Mapping[str, float], values: Mapping[str, float] | None = None
    ) -> SmoothedEmotion:
        """Add one frame at source time ``t`` (seconds); ``values`` (e.g. valence, arousal) are smoothed alike."""
        if not hasattr(self, "probabilities_"):
            self.reset()
        weight = self._weight(t)
        for store, new in ((self.probabilities_, probabilities), (self.values_, values or {})):
            for key, value in new.items():
                previous = store.get(key)
                store[key] = float(value) if previous is None else previous + weight * (float(value) - previous)
        self.last_t_ = t if self.last_t_ is None else max(t, self.last_t_)
        self._update_label(t)
        return SmoothedEmotion(label=self.label_, probabilities=dict(self.probabilities_), values=dict(self.values_))

    def _update_label(self, t: float) -> None:
        smoothed = self.probabilities_
        leader = max(smoothed, key=smoothed.__getitem__)
        if self.label_ is None or self.label_ not in smoothed:
            self.label_, self.pending_label_ = leader, None
            return
        if leader == self.label_ or smoothed[leader] - smoothed[self.label_] < self.switch_margin:
            self.pending_label_ = None
            return
        if leader != self.pending_label_:
            self.pending_label_, self.pending_since_ = leader, t
        if t - self.pending_since_ >= self.hold_s:
            self.label_, self.pending_label_ = leader, None
