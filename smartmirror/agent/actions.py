"""The interventions the agent can suggest, which modes allow them, and the breathing pacer the UI draws.

Action ids are the strings of the evaluation contract (``Suggestion.action``):

=============  ===============================================================================================
id             what the person is asked to do
=============  ===============================================================================================
none           nothing (``suggest`` returns ``None``; never shown)
micro_break    stand up and stretch for about 2 minutes
hydrate        drink a glass of water
breathing      guided box breathing, 4 s inhale, 4 s hold, 4 s exhale, 4 s hold, for about 1 minute
eye_rest       the 20-20-20 rule: look at something 20 feet (6 m) away for 20 seconds
posture        sit up, relax the shoulders, screen at eye level
pull_over      driver mode only, a safety rule: pull over safely and rest (never learned)
=============  ===============================================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NONE = "none"
PULL_OVER = "pull_over"


@dataclass(frozen=True)
class Action:
    """One intervention: its id, a short title, the message shown, and how long it takes (seconds)."""

    id: str
    title: str
    message: str
    duration_s: float


ACTIONS: dict[str, Action] = {
    a.id: a
    for a in (
        Action(NONE, "No suggestion", "", 0.0),
        Action("micro_break", "Micro-break", "Stand up and stretch for two minutes.", 120.0),
        Action("hydrate", "Hydrate", "Time for a glass of water.", 30.0),
        Action(
            "breathing",
            "Box breathing",
            "Follow the pacer: breathe in 4 s, hold 4 s, breathe out 4 s, hold 4 s.",
            64.0,
        ),
        Action("eye_rest", "Eye rest (20-20-20)", "Look at something 20 feet (6 m) away for 20 seconds.", 20.0),
        Action("posture", "Posture reset", "Sit up, relax your shoulders and bring the screen to eye level.", 15.0),
        Action(PULL_OVER, "Pull over and rest", "You look very drowsy. Pull over somewhere safe and rest.", 900.0),
    )
}

LEARNED_ACTIONS: tuple[str, ...] = ("micro_break", "hydrate", "breathing", "eye_rest", "posture")
"""The arms of the bandit. ``none`` and ``pull_over`` are never learned."""

MODE_ACTIONS: dict[str, tuple[str, ...]] = {
    "wellness": LEARNED_ACTIONS,
    # At the wheel nothing that means leaving the seat or looking away from the road.
    "driver": ("hydrate", "breathing", "posture"),
    "kiosk": LEARNED_ACTIONS,
}
"""Learned actions each mode may suggest (``pull_over`` comes from the driver safety rule only)."""


# --- box breathing pacer ---------------------------------------------------------------------------------------

BOX_PHASES: tuple[str, ...] = ("inhale", "hold", "exhale", "hold")


@dataclass(frozen=True)
class PacerPhase:
    """Where a box-breathing pacer is at a given time.

    ``label`` is what to show ("inhale", "hold", "exhale", "hold"); ``phase_index`` 0..3; ``cycle`` counts
    completed 4-phase cycles; ``phase_progress`` 0..1 within the phase; ``seconds_left`` in the phase;
    ``scale`` 0..1 is the size to draw (grows during inhale, full on the first hold, shrinks during exhale,
    empty on the second hold).
    """

    label: str
    phase_index: int
    cycle: int
    phase_progress: float
    seconds_left: float
    scale: float


def box_breathing_phase(elapsed_s: float, phase_s: float = 4.0) -> PacerPhase:
    """Pacer state ``elapsed_s`` seconds after the exercise started (box breathing, equal phases of ``phase_s``).

    Raises ``ValueError`` for a negative or non-finite time or a non-positive phase length.
    """
    elapsed = _real(elapsed_s)
    phase = _real(phase_s)
    if elapsed is None or elapsed < 0:
        raise ValueError(f"elapsed_s must be a finite number >= 0, got {elapsed_s!r}")
    if phase is None or phase <= 0:
        raise ValueError(f"phase_s must be a finite number > 0, got {phase_s!r}")
    steps, within_s = divmod(elapsed, phase)
    steps = int(steps)
    phase_index = steps % 4
    progress = within_s / phase
    scale = (progress, 1.0, 1.0 - progress, 0.0)[phase_index]
    return PacerPhase(
        label=BOX_PHASES[phase_index],
        phase_index=phase_index,
        cycle=steps // 4,
        phase_progress=progress,
        seconds_left=phase - within_s,
        scale=scale,
    )


def _real(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not a real finite number (bools and strings excluded)."""
    if isinstance(value, bool | str | bytes):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
