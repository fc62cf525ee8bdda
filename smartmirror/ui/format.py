"""Text for the panels (pure functions; the browser test reads these strings)."""

from __future__ import annotations

import math
from typing import Any

from smartmirror.analyzer import finite_number

DASH = "—"
DISCLAIMER = "Wellness demo, not a medical device: the numbers are estimates for curiosity and self-care only."


def heart_rate_text(bpm: Any) -> str:
    """"72 bpm", or "—" while there is no estimate."""
    value = finite_number(bpm)
    return DASH if value is None else f"{value:.0f} bpm"


def measuring_text(seconds_left: Any) -> str:
    """"measuring... 12 s" (or "measuring..." when the time left is unknown)."""
    value = finite_number(seconds_left)
    return "measuring..." if value is None else f"measuring... {max(0, math.ceil(value))} s"


def percent_text(fraction: Any, digits: int = 0) -> str:
    """0.42 -> "42%"; None -> "—"."""
    value = finite_number(fraction)
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def unit_text(value: Any, unit: str, digits: int = 0) -> str:
    """12.3, "ms" -> "12 ms"; None -> "—"."""
    value = finite_number(value)
    return DASH if value is None else f"{value:.{digits}f} {unit}".strip()


def clip01(value: Any) -> float:
    """A progress-bar value: the number clipped to 0..1 (0 when missing)."""
    value = finite_number(value)
    return 0.0 if value is None else min(max(value, 0.0), 1.0)
