"""Temporal fatigue measures on true timestamps: blinks, PERCLOS, long closures and microsleeps, and the event
clock every fatigue detector shares.

Every detector is fed one sample per frame with the frame's source-clock time ``t`` (seconds) and a flag saying
whether the sample continues the previous one (``False`` after a gap or a lost face). Nothing assumes a nominal
frame rate: durations come from timestamps, and threshold crossings are placed between two frames by linear
interpolation (:func:`crossing_time`), so a 0.15 s blink measures about 0.15 s at 15 fps as at 30 fps. The
mouth's events (yawns, talking) are in :mod:`smartmirror.fatigue.mouth`, the head's (nods, head away) in
:mod:`smartmirror.fatigue.head`.

Definitions (eye closure ``c`` is 0 for the person's open eye and 1 for a shut one, see the analyzer):

- closure episode: ``c`` rises through ``close_level`` (0.5) and ends when it falls back through it (a dip that
  does not reach ``reopen_level``, 0.35, is not a reopening). Its duration is measured at the 50 % level.
- blink: a closure episode shorter than ``long_closure_s`` (0.5 s).
- long closure: a closure episode that has lasted ``long_closure_s``; counted (and flagged live) the moment it
  reaches that length, so a driver alert needs no waiting for the eyes to reopen.
- microsleep: the eyes at least 80 % closed (PERCLOS's P80 level) continuously for ``microsleep_s`` (0.5 s);
  also counted the moment it reaches that length.
- PERCLOS (P80): the share of the last ``window_s`` (60 s) of face time with ``c >= 0.8`` (Wierwille et al.).

References
----------
Wierwille, W. W. et al. (1994). Research on vehicle-based driver status/performance monitoring. NHTSA DOT HS
808 247 (PERCLOS). Dinges, D. F. & Grace, R. (1998). PERCLOS: a valid psychophysiological measure of alertness
as assessed by psychomotor vigilance. FHWA-MCRT-98-006.
"""

from __future__ import annotations

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
