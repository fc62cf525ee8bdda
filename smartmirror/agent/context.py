"""The context dict the agent decides on: validation, documented defaults, and the bandit's feature vector.

Keys (the contract shared with the engine, the API and evaluations; every key is optional, ``None`` or NaN
counts as missing, unknown keys are ignored):

==============================  ==========  ======================================================================
key                             range       default when missing
==============================  ==========  ======================================================================
drowsiness_probability          0..1        0.0 (no sign of drowsiness)
perclos                         0..1        0.0
stress_score                    0..100      0.0
heart_rate_delta_bpm            any         0.0 (at baseline)
emotion_valence                 -1..1       0.0 (neutral)
emotion_arousal                 -1..1       0.0 (neutral)
minutes_in_session              >= 0        0.0
minutes_since_last_suggestion   >= 0        the agent's own record (no extra limit)
hour_of_day                     0..24       local wall-clock hour (fractional)
mode                            str         the agent's ``mode``
face_present                    bool        True (the caller did not say the face was lost)
now                             seconds     wall clock ``time.time()``
microsleep                      bool        False (driver safety rule input)
==============================  ==========  ======================================================================

A value of the wrong type or out of its range raises :class:`ContextError` (a ``ValueError``) naming the key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartmirror.modes import MODES

CONTEXT_KEYS: tuple[str, ...] = (
    "drowsiness_probability",
    "perclos",
    "stress_score",
    "heart_rate_delta_bpm",
    "emotion_valence",
    "emotion_arousal",
    "minutes_in_session",
    "minutes_since_last_suggestion",
    "hour_of_day",
    "mode",
    "face_present",
    "now",
    "microsleep",
)

# key -> (lowest, highest, default); None default = special handling below.
_NUMERIC: dict[str, tuple[float, float, float | None]] = {
    "drowsiness_probability": (0.0, 1.0, 0.0),
    "perclos": (0.0, 1.0, 0.0),
    "stress_score": (0.0, 100.0, 0.0),
    "heart_rate_delta_bpm": (-math.inf, math.inf, 0.0),
    "emotion_valence": (-1.0, 1.0, 0.0),
    "emotion_arousal": (-1.0, 1.0, 0.0),
    "minutes_in_session": (0.0, math.inf, 0.0),
    "minutes_since_last_suggestion": (0.0, math.inf, None),
    "hour_of_day": (0.0, 24.0, None),
    "now": (-math.inf, math.inf, None),
}
_TOLERANCE = 1e-6  # float noise at a range edge is clipped, anything beyond is an error

FEATURE_NAMES: tuple[str, ...] = (
    "bias",  # 1.0
    "drowsiness_probability",  # 0..1
    "perclos",  # 0..1
    "stress",  # stress_score / 100
    "heart_rate_delta",  # heart_rate_delta_bpm / 30, clipped to -1..1
    "emotion_valence",  # -1..1
    "emotion_arousal",  # -1..1
    "session_length",  # min(minutes_in_session, 240) / 120, 0..2
    "daytime_sin",  # sin(2 pi hour / 24)
    "daytime_cos",  # cos(2 pi hour / 24)
)
"""The bandit's feature vector, in order (see :func:`context_features`)."""


class ContextError(ValueError):
    """A context value has the wrong type or is out of range."""


@dataclass(frozen=True)
class AgentContext:
    """A validated context with defaults filled in (``minutes_since_last_suggestion`` and ``now`` stay None
    when missing: the agent fills them from its own clock)."""

    drowsiness_probability: float
    perclos: float
    stress_score: float
    heart_rate_delta_bpm: float
    emotion_valence: float
    emotion_arousal: float
    minutes_in_session: float
    minutes_since_last_suggestion: float | None
    hour_of_day: float
    mode: str
    face_present: bool
    now: float | None
    microsleep: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict with the contract's key names."""
        return dict(vars(self))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _number(key: str, value: Any, lowest: float, highest: float) -> float:
    if isinstance(value, bool | np.bool_ | str | bytes):
        raise ContextError(f"context[{key!r}] must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ContextError(f"context[{key!r}] must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ContextError(f"context[{key!r}] must be finite, got {value!r}")
    if number < lowest - _TOLERANCE or number > highest + _TOLERANCE:
        raise ContextError(f"context[{key!r}] must be in [{lowest:g}, {highest:g}], got {value!r}")
    return min(max(number, lowest), highest)


def _flag(key: str, value: Any, default: bool) -> bool:
    if _missing(value):
        return default
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ContextError(f"context[{key!r}] must be True or False, got {value!r}")


def _local_hour() -> float:
    now = time.localtime()
    return now.tm_hour + now.tm_min / 60.0


def parse_context(context: Mapping[str, Any], *, default_mode: str) -> AgentContext:
    """Validate ``context`` and fill the documented defaults.

    Raises :class:`ContextError` when ``context`` is not a mapping or a value is of the wrong type or range.
    """
    if not isinstance(context, Mapping):
        raise ContextError(f"context must be a dict, got {type(context).__name__}")
    values: dict[str, Any] = {}
    for key, (lowest, highest, default) in _NUMERIC.items():
        raw = context.get(key)
        values[key] = default if _missing(raw) else _number(key, raw, lowest, highest)
    if values["hour_of_day"] is None:
        values["hour_of_day"] = _local_hour()
    mode = context.get("mode")
    if _missing(mode):
        mode = default_mode
    if mode not in MODES:
        raise ContextError(f"context['mode'] must be one of {', '.join(MODES)}, got {mode!r}")
    return AgentContext(
        **values,
        mode=mode,
        face_present=_flag("face_present", context.get("face_present"), True),
        microsleep=_flag("microsleep", context.get("microsleep"), False),
    )


def context_features(ctx: AgentContext) -> np.ndarray:
    """The bandit's feature vector for ``ctx``: float64, shape ``(len(FEATURE_NAMES),)``, order as
    :data:`FEATURE_NAMES`. Every entry is bounded (-1..2), so no feature dominates the ridge penalty."""
    angle = 2.0 * math.pi * ctx.hour_of_day / 24.0
    return np.array(
        [
            1.0,
            ctx.drowsiness_probability,
            ctx.perclos,
            ctx.stress_score / 100.0,
            min(max(ctx.heart_rate_delta_bpm / 30.0, -1.0), 1.0),
            ctx.emotion_valence,
            ctx.emotion_arousal,
            min(ctx.minutes_in_session, 240.0) / 120.0,
            math.sin(angle),
            math.cos(angle),
        ],
        dtype=np.float64,
    )
