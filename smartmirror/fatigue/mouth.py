"""Mouth events on true timestamps: yawns, and the syllable-rate rhythm of talking that tells them apart.

Fed one sample per frame with its source-clock time, as the eye detectors (:mod:`smartmirror.fatigue.events`).

- yawn: the (median-filtered) mouth aspect ratio above the person's calibrated yawn threshold for at least
  ``min_duration_s`` (1.5 s) and at most ``max_duration_s``, dips shorter than ``close_hold_s`` bridged, without
  the syllable-rate open-close rhythm of speech.
- talking: at least ``min_reversals`` (4) speech reversals of the mouth aspect ratio within the last
  ``window_s`` (2 s) seconds: each a swing of at least ``swing`` (0.04) and of a third of the mouth's opening above
  its closed level, half a syllable cycle (0.06-0.5 s) after the previous one (:class:`MouthMotion`).
"""

from __future__ import annotations

import statistics
from collections import deque

from smartmirror.fatigue.events import crossing_time


class MouthMotion:
    """The rhythm of speech: the mouth opening and closing again at syllable rate (about 2-8 Hz).

    The mouth aspect ratio is first median-filtered over ``smooth_s`` seconds (FaceMesh's frame-to-frame jitter,
    0.05-0.1 in MAR on a wide-open mouth, is single-frame noise). A reversal is a change of direction after a
    swing of at least ``swing`` *and* at least ``relative_swing`` of the excursion's height above the closed
    mouth (``baseline``): a talking mouth nearly closes between syllables, a yawning mouth held open at MAR 1.3
    only trembles. A reversal is a *speech* reversal when it follows the previous one within ``min_half_cycle_s``
    to ``max_half_cycle_s`` (half a syllable cycle; slower opening and closing, like a yawn's, is not speech).
    Talking is at least ``min_reversals`` speech reversals in the last ``window_s`` seconds.
    """

    def __init__(
        self,
        swing: float = 0.04,
        window_s: float = 2.0,
        min_reversals: int = 4,
        relative_swing: float = 0.35,
        smooth_s: float = 0.1,
        min_half_cycle_s: float = 0.06,
        max_half_cycle_s: float = 0.5,
    ):
        self.swing = swing
        self.window_s = window_s
        self.min_reversals = min_reversals
        self.relative_swing = relative_swing
        self.smooth_s = smooth_s
        self.min_half_cycle_s = min_half_cycle_s
        self.max_half_cycle_s = max_half_cycle_s
        self._recent: deque[tuple[float, float]] = deque()
        self._floor: deque[tuple[float, float]] = deque()  # (t, smoothed) for the closed-mouth level
        self._direction = 0
        self._extreme: float | None = None
        self._low: float | None = None
        self._high: float | None = None
        self._last_reversal_t: float | None = None
        self.smoothed: float | None = None
        self.reversals: deque[float] = deque()

    def interrupt(self) -> None:
        """Forget the current movement (gap or lost face); past reversals stay."""
        self._direction = 0
        self._extreme = self._low = self._high = None
        self._last_reversal_t = None
        self._recent.clear()
        self.smoothed = None

    def _smooth(self, t: float, mar: float) -> float:
        self._recent.append((t, mar))
        while self._recent[0][0] < t - self.smooth_s:
            self._recent.popleft()
        return float(statistics.median(v for _, v in self._recent))

    def _closed_level(self, t: float, value: float, baseline: float | None) -> float:
        if baseline is not None:
            return baseline
        # no calibrated baseline: the lowest smoothed opening of the last few seconds
        self._floor.append((t, value))
        while self._floor[0][0] < t - max(self.window_s, 4.0):
            self._floor.popleft()
        return min(v for _, v in self._floor)

    def _needed(self, extreme: float, closed: float) -> float:
        return max(self.swing, self.relative_swing * max(extreme - closed, 0.0))

    def _reverse(self, t: float, direction: int, value: float) -> None:
        last = self._last_reversal_t
        if last is not None and self.min_half_cycle_s <= t - last <= self.max_half_cycle_s:
            self.reversals.append(t)
        self._last_reversal_t = t
        self._direction, self._extreme = direction, value

    def update(self, t: float, mar: float, baseline: float | None = None) -> None:
        """Consume one frame's mouth aspect ratio (``baseline``: the person's closed-mouth MAR, when known)."""
        value = self.smoothed = self._smooth(t, mar)
        closed = self._closed_level(t, value, baseline)
        if self._direction == 0:
            self._low = value if self._low is None else min(self._low, value)
            self._high = value if self._high is None else max(self._high, value)
            if value - self._low >= self._needed(self._low, closed):
                self._direction, self._extreme = 1, value
                self._last_reversal_t = t
            elif self._high - value >= self._needed(self._high, closed):
                self._direction, self._extreme = -1, value
                self._last_reversal_t = t
        elif self._direction > 0:
            if value > self._extreme:
                self._extreme = value
            elif self._extreme - value >= self._needed(self._extreme, closed):
                self._reverse(t, -1, value)
        else:
            if value < self._extreme:
                self._extreme = value
            elif value - self._extreme >= self._needed(self._extreme, closed):
                self._reverse(t, 1, value)
        while self.reversals and self.reversals[0] < t - max(self.window_s, 30.0):
            self.reversals.popleft()

    def count_between(self, start: float, end: float) -> int:
        """Speech reversals with start <= time <= end."""
        return sum(1 for r in self.reversals if start <= r <= end)

    def talking(self, now: float) -> bool:
        """Speech-like mouth motion in the last ``window_s`` seconds."""
        return self.count_between(now - self.window_s, now) >= self.min_reversals


class YawnDetector:
    """Yawns: the mouth held open beyond the calibrated threshold, not speech.

    Works on the median-filtered MAR (:class:`MouthMotion`'s, over ``smooth_s``). The open spell starts when it
    rises through ``threshold`` and continues while it stays above ``baseline + exit_fraction * (threshold -
    baseline)``; a dip below that shorter than ``close_hold_s`` (landmark noise on a wide-open mouth, a swallow
    mid-yawn) does not end it, so one yawn is one spell. The spell is a yawn when it lasted ``min_duration_s``
    to ``max_duration_s`` seconds with fewer than ``speech_reversals_per_s`` speech reversals per second inside.
    """

    def __init__(
        self,
        min_duration_s: float = 1.5,
        max_duration_s: float = 12.0,
        exit_fraction: float = 0.7,
        speech_reversals_per_s: float = 1.5,
        close_hold_s: float = 0.4,
        motion: MouthMotion | None = None,
    ):
        self.min_duration_s = min_duration_s
        self.max_duration_s = max_duration_s
        self.exit_fraction = exit_fraction
        self.speech_reversals_per_s = speech_reversals_per_s
        self.close_hold_s = close_hold_s
        self.motion = MouthMotion() if motion is None else motion   # the speech rhythm inside a spell
        self._start: float | None = None
        self._below_since: float | None = None  # when the smoothed MAR fell under the exit level in this spell
        self._last: tuple[float, float] | None = None
        self.yawning_now = False
        self.mouth_open_now = False
        self.last_yawn_duration_s: float | None = None

    def _speech(self, start: float, end: float) -> bool:
        reversals = self.motion.count_between(start, end)
        return reversals >= 3 and reversals / max(end - start, 1e-6) >= self.speech_reversals_per_s

    def _finish(self, end: float) -> bool:
        start, self._start = self._start, None
        self._below_since = None
        self.yawning_now = False
        if start is None:
            return False
        duration = end - start
        if self.min_duration_s <= duration <= self.max_duration_s and not self._speech(start, end):
            self.last_yawn_duration_s = duration
            return True
        return False

    def interrupt(self) -> bool:
        """End an open spell at the last face frame (a hand over a yawning mouth often loses the face).

        Returns True when that spell counts as a yawn.
        """
        counted = False
        if self._start is not None and self._last is not None:
            counted = self._finish(self._below_since if self._below_since is not None else self._last[0])
        self._start = self._below_since = None
        self._last = None
        self.mouth_open_now = False
        self.motion.interrupt()
        return counted

    def update(self, t: float, mar: float, baseline: float, threshold: float, continuous: bool) -> bool:
        """Consume one frame's MAR; return True when a yawn ended in this frame."""
        counted = False
        if not continuous:
            counted = self.interrupt()
        self.motion.update(t, mar, baseline)
        value = self.motion.smoothed
        last = self._last
        self._last = (t, value)
        exit_level = baseline + self.exit_fraction * (threshold - baseline)
        self.mouth_open_now = value >= threshold
        if self._start is None:
            if value >= threshold:
                self._start = crossing_time(*last, t, value, threshold) if last is not None else t
                self._below_since = None
        elif value < exit_level:
            if self._below_since is None:
                self._below_since = crossing_time(*last, t, value, exit_level) if last is not None else t
            if t - self._below_since >= self.close_hold_s:
                counted = self._finish(self._below_since) or counted
        else:
            self._below_since = None
        if self._start is not None:
            end = self._below_since if self._below_since is not None else t
            duration = end - self._start
            self.yawning_now = (self._below_since is None and self.min_duration_s <= duration <= self.max_duration_s
                                and not self._speech(self._start, end))
        return counted

    def pending_yawn(self) -> bool:
        """Whether the open spell in progress would count as a yawn if it ended now (the end of a clip)."""
        if self._start is None or self._last is None:
            return False
        end = self._below_since if self._below_since is not None else self._last[0]
        return self.min_duration_s <= end - self._start <= self.max_duration_s and not self._speech(self._start, end)

    def talking(self, now: float) -> bool:
        """Speech-like mouth motion in the last seconds (never during a yawn)."""
        return self.motion.talking(now) and not self.yawning_now
