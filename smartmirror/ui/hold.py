"""Hold the last confident heart rate through short dips of confidence (pure, clock passed in).

The live rate is read from a 10 s window every second and each window is gated on its own confidence, so one
weak window (a blink, a head turn, an encoder hiccup) blanks the display for a second although the track is
unchanged. Like a pulse oximeter, the page holds the last confident value for at most ``hold_s`` seconds and
says so; a longer dip, a lost face or a changed track shows "—" again.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds a confident heart rate stays on screen while the newest windows are below the gate.
HOLD_S = 5.0


@dataclass
class HeldReading:
    bpm: float | None          # what to show (None: nothing)
    held_for_s: float | None   # seconds since that value was confident (None: it is the newest reading)


class ReadingHold:
    """Keeps the last confident reading and when it was seen (``now`` in any monotonic seconds)."""

    def __init__(self, hold_s: float = HOLD_S):
        self.hold_s = hold_s
        self.bpm: float | None = None
        self.at: float | None = None

    def update(self, bpm: float | None, *, face_present: bool, now: float) -> HeldReading:
        """The reading to show now given the newest (gated) rate."""
        if bpm is not None:
            self.bpm, self.at = float(bpm), now
            return HeldReading(self.bpm, None)
        if not face_present or self.bpm is None or self.at is None or now - self.at > self.hold_s:
            self.bpm = self.at = None
            return HeldReading(None, None)
        return HeldReading(self.bpm, now - self.at)
