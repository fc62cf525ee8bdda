"""Per-person baselines: learned over the first seconds with a face, then re-learned slowly.

Eye and mouth shapes differ between people (a narrow-eyed person's open EAR can sit below the classic fixed 0.2
"closed" threshold), so every fatigue threshold is a fraction of the person's own baseline. A
:class:`Baseline` follows one signal (EAR, MAR, head pitch, head yaw):

1. calibration: the ``percentile`` of every sample seen during the first ``calibration_s`` seconds of face time
   (a provisional value from the first sample on, so detection never waits);
2. afterwards: every ``relearn_every_s`` seconds the baseline moves towards the ``percentile`` of the last
   ``window_s`` seconds (samples decimated to one per ``sample_every_s``) by a first-order step with time
   constant ``relearn_tau_s``: slow enough that a drowsy minute does not redefine "open eyes".

A high percentile (75th) makes the EAR baseline the open-eye level despite blinks and closures; the median
suits the mouth at rest and the head's usual pitch and yaw.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class Baseline:
    """One signal's per-person baseline (see the module docstring).

    Parameters
    ----------
    percentile : float
        Percentile (0..100) of the samples taken as the baseline.
    calibration_s : float
        Seconds of face time for the initial calibration.
    window_s : float
        Seconds of recent samples the slow re-learning looks at.
    relearn_tau_s : float
        Time constant (seconds) of the re-learning; ``inf`` freezes the calibrated value.
    min_fraction : float or None
        For a positive signal: the re-learned baseline never falls below this fraction of the calibrated one
        (None: no floor).
    sample_every_s : float
        Decimation of the re-learning window (seconds between kept samples).
    relearn_every_s : float
        Seconds between re-learning steps.
    """

    def __init__(
        self,
        percentile: float,
        calibration_s: float,
        window_s: float = 120.0,
        relearn_tau_s: float = 120.0,
        min_fraction: float | None = None,
        sample_every_s: float = 0.2,
        relearn_every_s: float = 1.0,
    ):
        self.percentile = percentile
        self.calibration_s = calibration_s
        self.window_s = window_s
        self.relearn_tau_s = relearn_tau_s
        self.min_fraction = min_fraction
        self.sample_every_s = sample_every_s
        self.relearn_every_s = relearn_every_s
        self.reset()

    def reset(self) -> None:
        """Forget the person (a new calibration starts with the next sample)."""
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {self.percentile!r}")
        if not self.calibration_s > 0:
            raise ValueError(f"calibration_s must be > 0 seconds, got {self.calibration_s!r}")
        self.value_: float | None = None
        self.calibrated_value_: float | None = None
        self.face_time_s_ = 0.0
        self._calibration_samples: list[float] = []
        self._recent_t: deque[float] = deque()
        self._recent_v: deque[float] = deque()
        self._last_t: float | None = None
        self._last_kept_t = -math.inf
        self._last_relearn_t = -math.inf

    @property
    def calibrated(self) -> bool:
        """Whether the initial calibration is complete."""
        return self.calibrated_value_ is not None

    def update(self, t: float, value: float, dt: float) -> float:
        """Add one sample at source time ``t`` (seconds) that stood for ``dt`` seconds of face time.

        Returns the current baseline.
        """
        if not math.isfinite(value):
            return self.value_ if self.value_ is not None else value
        self.face_time_s_ += dt
        if self.calibrated_value_ is None:
            samples = self._calibration_samples
            samples.append(value)
            n = len(samples)
            # recomputing a percentile of a few hundred numbers is cheap, but skip it when the count is large
            if n < 16 or n % 4 == 0 or self.face_time_s_ >= self.calibration_s:
                self.value_ = float(np.percentile(samples, self.percentile))
            if self.face_time_s_ >= self.calibration_s:
                self.calibrated_value_ = self.value_
                for sample in samples[-int(self.window_s / max(self.sample_every_s, 1e-3)) :]:
                    self._recent_t.append(t)
                    self._recent_v.append(sample)
                self._calibration_samples = []
                self._last_kept_t = t
                self._last_relearn_t = t
            return self.value_
        if t - self._last_kept_t >= self.sample_every_s:
            self._recent_t.append(t)
            self._recent_v.append(value)
            self._last_kept_t = t
            while self._recent_t and self._recent_t[0] < t - self.window_s:
                self._recent_t.popleft()
                self._recent_v.popleft()
        if t - self._last_relearn_t >= self.relearn_every_s and self._recent_v:
            elapsed = t - self._last_relearn_t
            self._last_relearn_t = t
            target = float(np.percentile(np.fromiter(self._recent_v, float, len(self._recent_v)), self.percentile))
            step = 1.0 - math.exp(-elapsed / self.relearn_tau_s) if math.isfinite(self.relearn_tau_s) else 0.0
            value_now = self.value_ + step * (target - self.value_)
            if self.min_fraction is not None:
                value_now = max(value_now, self.min_fraction * self.calibrated_value_)
            self.value_ = value_now
        return self.value_
