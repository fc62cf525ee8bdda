"""Temporal fatigue measures on true timestamps: blinks, PERCLOS, long closures, microsleeps, yawns, nods, and
head-away time.

Every detector is fed one sample per frame with the frame's source-clock time ``t`` (seconds) and a flag saying
whether the sample continues the previous one (``False`` after a gap or a lost face). Nothing assumes a nominal
frame rate: durations come from timestamps, and threshold crossings are placed between two frames by linear
interpolation, so a 0.15 s blink measures about 0.15 s at 15 fps as at 30 fps.

Definitions (eye closure ``c`` is 0 for the person's open eye and 1 for a shut one, see the analyzer):

- closure episode: ``c`` rises through ``close_level`` (0.5) and ends when it falls back through it (a dip that
  does not reach ``reopen_level``, 0.35, is not a reopening). Its duration is measured at the 50 % level.
- blink: a closure episode shorter than ``long_closure_s`` (0.5 s).
- long closure: a closure episode that has lasted ``long_closure_s``; counted (and flagged live) the moment it
  reaches that length, so a driver alert needs no waiting for the eyes to reopen.
- microsleep: the eyes at least 80 % closed (PERCLOS's P80 level) continuously for ``microsleep_s`` (0.5 s);
  also counted the moment it reaches that length.
- PERCLOS (P80): the share of the last ``window_s`` (60 s) of face time with ``c >= 0.8`` (Wierwille et al.).
- yawn: the (median-filtered) mouth aspect ratio above the person's calibrated yawn threshold for at least
  ``min_duration_s`` (1.5 s) and at most ``max_duration_s``, dips shorter than ``close_hold_s`` bridged, without
  the syllable-rate open-close rhythm of speech.
- talking: at least ``min_reversals`` (4) speech reversals of the mouth aspect ratio within the last
  ``window_s`` (2 s) seconds: each a swing of at least ``swing`` (0.04) and of a third of the mouth's opening above
  its closed level, half a syllable cycle (0.06-0.5 s) after the previous one (:class:`MouthMotion`).
- nod: head pitch falls at least ``drop_deg`` below the person's usual pitch within ``onset_s`` seconds.
- head away: yaw more than ``yaw_deg`` or pitch more than ``pitch_deg`` away from the person's usual pose;
  distraction when it lasts ``distraction_s`` (3 s; Euro NCAP's long-distraction criterion for eyes off road).

References
----------
Wierwille, W. W. et al. (1994). Research on vehicle-based driver status/performance monitoring. NHTSA DOT HS
808 247 (PERCLOS). Dinges, D. F. & Grace, R. (1998). PERCLOS: a valid psychophysiological measure of alertness
as assessed by psychomotor vigilance. FHWA-MCRT-98-006. Euro NCAP (2023). Assessment protocol - safety assist:
driver state monitoring.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

#: Closure level of PERCLOS's "eyes closed" (P80: at least 80 % closed).
P80_LEVEL = 0.8


def crossing_time(t0: float, v0: float, t1: float, v1: float, level: float) -> float:
    """Time (seconds) at which a signal going linearly from ``v0`` at ``t0`` to ``v1`` at ``t1`` crosses ``level``."""
    if v1 == v0:
        return t1
    fraction = (level - v0) / (v1 - v0)
    return t0 + min(1.0, max(0.0, fraction)) * (t1 - t0)


class EventTimes:
    """Times (seconds) of one kind of event, with counts over a trailing window and over everything seen."""

    def __init__(self, keep_s: float):
        self.keep_s = keep_s
        self._times: deque[float] = deque()
        self._values: deque[float] = deque()
        self.total = 0
        self.total_value = 0.0

    def add(self, t: float, value: float = 0.0) -> None:
        """Record one event at ``t`` carrying ``value`` (for example a blink's duration in seconds)."""
        self._times.append(t)
        self._values.append(value)
        self.total += 1
        self.total_value += value

    def _evict(self, now: float) -> None:
        while self._times and self._times[0] < now - self.keep_s:
            self._times.popleft()
            self._values.popleft()

    def count(self, now: float, window_s: float) -> int:
        """Events in the last ``window_s`` seconds (``window_s`` at most ``keep_s``)."""
        self._evict(now)
        start = now - window_s
        return sum(1 for t in self._times if t >= start)

    def values(self, now: float, window_s: float) -> list[float]:
        """Values of the events in the last ``window_s`` seconds."""
        self._evict(now)
        start = now - window_s
        return [v for t, v in zip(self._times, self._values, strict=True) if t >= start]


class PerclosMeter:
    """Time-weighted share of eye closure at or above :data:`P80_LEVEL` over a trailing window and overall.

    Each pair of consecutive face frames contributes the time between them; the closed part of that interval is
    placed by interpolating the closure linearly between the two frames. Time without a face (or a gap longer
    than ``max_gap_s``) counts neither as open nor as closed.
    """

    def __init__(self, window_s: float = 60.0, max_gap_s: float = 1.0, level: float = P80_LEVEL):
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.level = level
        self._intervals: deque[tuple[float, float, float]] = deque()  # (start, end, closed seconds)
        self._sum_s = 0.0
        self._sum_closed_s = 0.0
        self.total_s = 0.0
        self.total_closed_s = 0.0
        self._last: tuple[float, float] | None = None

    def update(self, t: float, closure: float, continuous: bool) -> None:
        """Add the interval from the previous frame to this one (when ``continuous``)."""
        last = self._last
        self._last = (t, closure)
        if not continuous or last is None:
            return
        t0, c0 = last
        dt = t - t0
        if dt <= 0 or dt > self.max_gap_s:
            return
        a, b = c0 >= self.level, closure >= self.level
        if a and b:
            closed = dt
        elif not a and not b:
            closed = 0.0
        else:
            cross = crossing_time(t0, c0, t, closure, self.level)
            closed = (t - cross) if b else (cross - t0)
        self._intervals.append((t0, t, closed))
        self._sum_s += dt
        self._sum_closed_s += closed
        self.total_s += dt
        self.total_closed_s += closed
        start = t - self.window_s
        while self._intervals and self._intervals[0][1] <= start:
            s0, s1, sc = self._intervals.popleft()
            self._sum_s -= s1 - s0
            self._sum_closed_s -= sc

    def observed_s(self) -> float:
        """Face time (seconds) inside the trailing window."""
        total, _ = self._window_sums()
        return total

    def _window_sums(self) -> tuple[float, float]:
        if not self._intervals:
            return 0.0, 0.0
        total, closed = self._sum_s, self._sum_closed_s
        s0, s1, sc = self._intervals[0]
        start = self._intervals[-1][1] - self.window_s
        if s0 < start:  # the oldest interval sticks out of the window: drop the part outside, pro rata
            outside = (start - s0) / (s1 - s0)
            total -= outside * (s1 - s0)
            closed -= outside * sc
        return max(total, 0.0), min(max(closed, 0.0), max(total, 0.0))

    def perclos(self) -> float | None:
        """PERCLOS over the trailing window, 0..1 (None before any face time)."""
        total, closed = self._window_sums()
        return closed / total if total > 0 else None

    def total_perclos(self) -> float | None:
        """PERCLOS over all face time seen, 0..1 (None before any face time)."""
        return self.total_closed_s / self.total_s if self.total_s > 0 else None


@dataclass
class _Episode:
    start: float
    end_candidate: float | None = None
    long_counted: bool = False


class EyeClosureDetector:
    """Blinks, long closures and microsleeps from the per-frame eye closure (0 open .. 1 shut).

    ``update`` returns the names of the events completed or reached in this frame: ``"blink"`` (with its duration
    in :attr:`last_blink_duration_s`), ``"long_closure"``, ``"microsleep"``.
    """

    def __init__(
        self,
        close_level: float = 0.5,
        reopen_level: float = 0.35,
        long_closure_s: float = 0.5,
        microsleep_s: float = 0.5,
        microsleep_level: float = P80_LEVEL,
        microsleep_exit_level: float = 0.7,
    ):
        self.close_level = close_level
        self.reopen_level = reopen_level
        self.long_closure_s = long_closure_s
        self.microsleep_s = microsleep_s
        self.microsleep_level = microsleep_level
        self.microsleep_exit_level = microsleep_exit_level
        self._episode: _Episode | None = None
        self._run_start: float | None = None  # start of the current P80 run
        self._run_counted = False
        self._last: tuple[float, float] | None = None
        self.last_blink_duration_s: float | None = None
        self.closed_now = False
        self.long_closure_now = False
        self.microsleep_now = False
        self.current_closure_s = 0.0

    def interrupt(self) -> None:
        """The face was lost or the stream had a gap: end any episode without classifying it as a blink."""
        self._episode = None
        self._run_start = None
        self._run_counted = False
        self._last = None
        self.closed_now = self.long_closure_now = self.microsleep_now = False
        self.current_closure_s = 0.0

    def update(self, t: float, closure: float, continuous: bool) -> list[str]:
        """Consume one frame's eye closure at time ``t``; return the events of this frame."""
        if not continuous:
            self.interrupt()
        events: list[str] = []
        last = self._last
        self._last = (t, closure)
        t0, c0 = last if last is not None else (t, closure)

        # --- closure episodes at the 50 % level (blinks and long closures)
        episode = self._episode
        if episode is None:
            if closure >= self.close_level:
                start = crossing_time(t0, c0, t, closure, self.close_level) if last is not None else t
                episode = self._episode = _Episode(start=start)
        else:
            if closure < self.close_level and episode.end_candidate is None:
                episode.end_candidate = crossing_time(t0, c0, t, closure, self.close_level)
            elif closure >= self.close_level:
                episode.end_candidate = None  # a dip that did not reopen the eye
            if closure < self.reopen_level:
                end = episode.end_candidate if episode.end_candidate is not None else t
                duration = end - episode.start
                if duration < self.long_closure_s and not episode.long_counted:
                    self.last_blink_duration_s = duration
                    events.append("blink")
                self._episode = episode = None
        if episode is not None and not episode.long_counted and t - episode.start >= self.long_closure_s:
            if episode.end_candidate is None or episode.end_candidate - episode.start >= self.long_closure_s:
                episode.long_counted = True
                events.append("long_closure")
        self.closed_now = episode is not None and episode.end_candidate is None
        self.long_closure_now = bool(episode is not None and episode.long_counted and self.closed_now)
        self.current_closure_s = (t - episode.start) if self.closed_now else 0.0

        # --- microsleeps: continuous P80 closure
        if self._run_start is None:
            if closure >= self.microsleep_level:
                self._run_start = (
                    crossing_time(t0, c0, t, closure, self.microsleep_level) if last is not None else t
                )
                self._run_counted = False
        elif closure < self.microsleep_exit_level:
            self._run_start = None
            self._run_counted = False
        in_run = self._run_start is not None
        if in_run and not self._run_counted and t - self._run_start >= self.microsleep_s:
            self._run_counted = True
            events.append("microsleep")
        self.microsleep_now = bool(in_run and self._run_counted)
        return events


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


class NodDetector:
    """Head nods: pitch falling ``drop_deg`` below the usual pitch within ``onset_s`` seconds."""

    def __init__(self, drop_deg: float = 10.0, onset_s: float = 2.0):
        self.drop_deg = drop_deg
        self.onset_s = onset_s
        self._down = False
        self._level_t = -math.inf
        self.head_down_now = False

    def interrupt(self) -> None:
        """Forget the current head movement (the onset of a drop seen after a gap is unknown)."""
        self._level_t = -math.inf

    def update(self, t: float, pitch_deg: float, usual_pitch_deg: float, continuous: bool) -> bool:
        """Consume one frame's pitch; return True when a nod starts in this frame."""
        if not continuous:
            self.interrupt()
        drop = usual_pitch_deg - pitch_deg
        nod = False
        if not self._down:
            if drop >= self.drop_deg:
                self._down = True
                nod = t - self._level_t <= self.onset_s
            elif drop < self.drop_deg / 2:
                self._level_t = t
        elif drop < self.drop_deg / 2:
            self._down = False
            self._level_t = t
        self.head_down_now = self._down
        return nod


class HeadAwayTracker:
    """Time with the head turned away from the person's usual pose (driver distraction)."""

    def __init__(self, yaw_deg: float = 30.0, pitch_deg: float = 20.0, distraction_s: float = 3.0):
        self.yaw_deg = yaw_deg
        self.pitch_deg = pitch_deg
        self.distraction_s = distraction_s
        self._since: float | None = None
        self.away_now = False
        self.current_away_s = 0.0
        self.total_away_s = 0.0
        self.distractions = 0
        self._counted = False
        self._last_t: float | None = None

    def interrupt(self) -> None:
        """The face was lost: the current spell ends."""
        self._since = None
        self._counted = False
        self._last_t = None
        self.away_now = False
        self.current_away_s = 0.0

    def update(
        self, t: float, yaw_deg: float, pitch_deg: float, usual_yaw_deg: float, usual_pitch_deg: float,
        continuous: bool,
    ) -> bool:
        """Consume one frame's pose; return True when a distraction (away for ``distraction_s``) starts."""
        if not continuous:
            self.interrupt()
        away = abs(yaw_deg - usual_yaw_deg) > self.yaw_deg or abs(pitch_deg - usual_pitch_deg) > self.pitch_deg
        if self.away_now and self._last_t is not None:
            self.total_away_s += t - self._last_t
        self._last_t = t
        started = False
        if away:
            if self._since is None:
                self._since = t
                self._counted = False
            self.current_away_s = t - self._since
            if not self._counted and self.current_away_s >= self.distraction_s:
                self._counted = True
                self.distractions += 1
                started = True
        else:
            self._since = None
            self._counted = False
            self.current_away_s = 0.0
        self.away_now = away
        return started

    @property
    def distracted(self) -> bool:
        """Away for at least ``distraction_s`` right now."""
        return self.away_now and self.current_away_s >= self.distraction_s
