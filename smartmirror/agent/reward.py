"""Rewards in 0..1 that ``InterventionAgent.feedback`` learns from.

Explicit feedback (the person taps a button):

==============  ======  ==========================================================================
kind            reward  meaning
==============  ======  ==========================================================================
helpful         1.0     the suggestion helped
ignored         0.25    no answer before the suggestion expired (weak evidence, not a dismissal)
not_helpful     0.0     dismissed: the action is not suggested again for ``dismissed_repeat_minutes``
==============  ======  ==========================================================================

Implicit feedback (after an accepted suggestion, no button pressed): compare the context a few minutes later
with the context when the suggestion was made, see :func:`implicit_reward`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

EXPLICIT_REWARDS: dict[str, float] = {"helpful": 1.0, "ignored": 0.25, "not_helpful": 0.0}

DISMISSED_BELOW = 0.25
"""A reward strictly below this counts as a dismissal (starts the action's repeat block)."""

IMPLICIT_GAIN = 2.5
"""Reward per unit of improvement in :func:`implicit_reward`: a 0.2 drop (20 points of stress or 0.2 of
drowsiness probability) already reaches reward 1.0; the same rise reaches 0.0."""


def explicit_reward(kind: str) -> float:
    """Reward for explicit feedback ``kind`` ("helpful", "ignored" or "not_helpful")."""
    try:
        return EXPLICIT_REWARDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"feedback kind must be one of {', '.join(EXPLICIT_REWARDS)}; got {kind!r}") from None


def _signal(ctx: Mapping[str, Any], key: str, scale: float) -> float | None:
    value = ctx.get(key)
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value) / scale
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def implicit_reward(before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
    """Reward from how the person's state changed after an accepted suggestion.

    ``before`` is the context when the suggestion was made, ``after`` the context some minutes later (5 min is a
    sensible wait). Each signal present in both is put on a 0..1 scale (``drowsiness_probability`` as is,
    ``stress_score / 100``) and the improvement is the mean drop over those signals::

        improvement = mean(before_i - after_i)          (positive = better)
        reward = clip(0.5 + IMPLICIT_GAIN * improvement, 0, 1)

    No change gives 0.5. Raises ``ValueError`` when neither signal is present in both contexts.
    """
    drops = []
    for key, scale in (("drowsiness_probability", 1.0), ("stress_score", 100.0)):
        b, a = _signal(before, key, scale), _signal(after, key, scale)
        if b is not None and a is not None:
            drops.append(b - a)
    if not drops:
        raise ValueError("implicit_reward needs drowsiness_probability or stress_score in both contexts")
    improvement = sum(drops) / len(drops)
    return min(max(0.5 + IMPLICIT_GAIN * improvement, 0.0), 1.0)
