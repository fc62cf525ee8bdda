"""Head events on true timestamps: nods and time with the head turned away.

Fed one sample per frame with its source-clock time, as the eye detectors (:mod:`smartmirror.fatigue.events`).

- nod: head pitch falls at least ``drop_deg`` below the person's usual pitch within ``onset_s`` seconds.
- head away: yaw more than ``yaw_deg`` or pitch more than ``pitch_deg`` away from the person's usual pose;
  distraction when it lasts ``distraction_s`` (3 s; Euro NCAP's long-distraction criterion for eyes off road).

References
----------
Euro NCAP (2023). Assessment protocol - safety assist: driver state monitoring.
"""

from __future__ import annotations

import math


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
