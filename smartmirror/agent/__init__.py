"""Intervention agent: a contextual bandit (LinUCB) that learns which suggestion helps, with cooldowns, a
confidence gate, the driver safety rule, SQLite persistence and a user simulator.

The evaluation contract::

    agent = InterventionAgent(mode="wellness", seed=0, store=None)
    s = agent.suggest(context)          # Suggestion (s.action) or None
    agent.feedback(s, reward)           # reward in 0..1
"""

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
