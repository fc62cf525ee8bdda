"""Intervention agent: a contextual bandit (LinUCB) that learns which suggestion helps, with cooldowns, a
confidence gate, the driver safety rule, SQLite persistence and a user simulator.

The evaluation contract::

    agent = InterventionAgent(mode="wellness", seed=0, store=None)
    s = agent.suggest(context)          # Suggestion (s.action) or None
    agent.feedback(s, reward)           # reward in 0..1

Names are imported lazily (PEP 562) so ``import smartmirror.cli.agent`` (the CLI) does not load numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ACTIONS": "actions",
    "LEARNED_ACTIONS": "actions",
    "MODE_ACTIONS": "actions",
    "PacerPhase": "actions",
    "box_breathing_phase": "actions",
    "CRITICAL_DROWSINESS": "agent",
    "PULL_OVER_REALERT_S": "agent",
    "InterventionAgent": "agent",
    "Suggestion": "agent",
    "CONTEXT_KEYS": "context",
    "FEATURE_NAMES": "context",
    "ContextError": "context",
    "context_features": "context",
    "parse_context": "context",
    "EXPLICIT_REWARDS": "reward",
    "explicit_reward": "reward",
    "implicit_reward": "reward",
    "simulate": "simulator",
    "AgentStore": "store",
    "StoreError": "store",
}

__all__ = [
    "ACTIONS",
    "AgentStore",
    "CONTEXT_KEYS",
    "CRITICAL_DROWSINESS",
    "ContextError",
    "EXPLICIT_REWARDS",
    "FEATURE_NAMES",
    "InterventionAgent",
    "LEARNED_ACTIONS",
    "MODE_ACTIONS",
    "PULL_OVER_REALERT_S",
    "PacerPhase",
    "StoreError",
    "Suggestion",
    "box_breathing_phase",
    "context_features",
    "explicit_reward",
    "implicit_reward",
    "parse_context",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from smartmirror.agent.actions import (
        ACTIONS,
        LEARNED_ACTIONS,
        MODE_ACTIONS,
        PacerPhase,
        box_breathing_phase,
    )
    from smartmirror.agent.agent import CRITICAL_DROWSINESS, PULL_OVER_REALERT_S, InterventionAgent, Suggestion
    from smartmirror.agent.context import CONTEXT_KEYS, FEATURE_NAMES, ContextError, context_features, parse_context
    from smartmirror.agent.reward import EXPLICIT_REWARDS, explicit_reward, implicit_reward
    from smartmirror.agent.simulator import simulate
    from smartmirror.agent.store import AgentStore, StoreError
