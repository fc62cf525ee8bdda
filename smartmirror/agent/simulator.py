"""A parametric user simulator and the comparison of the agent with random, fixed-rule and oracle policies.

Each simulated user answers a suggestion "helpful" with probability ``sigmoid(w_a . f(context))`` (``f`` below, a
different basis from the agent's features, so the agent's linear model is only an approximation), ignores it
with a per-user probability, and otherwise says "not helpful". Rewards follow ``reward.EXPLICIT_REWARDS``
(1 / 0.25 / 0), so the expected reward of action ``a`` is ``(1 - p_ignore) * p_help_a + p_ignore * 0.25``.

The prototype user (weights drawn around it per user, so people differ):

- micro_break helps drowsiness (and PERCLOS), a little more in long sessions;
- hydrate helps late in long sessions, more in the afternoon;
- breathing helps high stress, more with high arousal and negative valence;
- eye_rest helps long screen time when the person is not drowsy;
- posture is a mild all-round default.

Each user also gets a random offset per action and, with probability 0.4, one action they dislike (so any fixed
rule is wrong for somebody). Every decision is one check-in an hour after the previous one (``now`` advances by
3600 s), so the agent's cooldowns never bind here: they are tested separately.

All policies see the same contexts and the same random draws for the person's answer (common random numbers),
so differences are due to the choices only. Regret is pseudo-regret: the oracle's expected reward minus the
chosen action's expected reward, summed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartmirror.agent.actions import LEARNED_ACTIONS
from smartmirror.agent.agent import InterventionAgent
from smartmirror.agent.reward import EXPLICIT_REWARDS

SIM_FEATURES: tuple[str, ...] = (
    "bias",
    "drowsiness_probability",
    "perclos",
    "stress",  # stress_score / 100
    "arousal",
    "negativity",  # -emotion_valence
    "session_hours",  # minutes_in_session / 60
    "afternoon",  # exp(-((hour - 15) / 3)^2)
    "heart_rate_delta",  # heart_rate_delta_bpm / 30
)

# Prototype logits per action (rows in LEARNED_ACTIONS order, columns in SIM_FEATURES order).
PROTOTYPE_WEIGHTS = np.array(
    [
        # bias  drowsy perclos stress arousal neg  session aftern  hr
        [-2.6, 4.5, 1.5, 0.0, -0.3, 0.0, 0.3, 0.0, 0.0],  # micro_break
        [-3.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.1, 1.5, 0.4],  # hydrate
        [-3.0, 0.0, 0.0, 4.2, 0.8, 0.8, 0.0, 0.0, 0.4],  # breathing
        [-2.2, -2.0, 0.0, 0.0, 0.0, 0.0, 1.2, 0.0, 0.0],  # eye_rest
        [-0.9, 0.0, 0.0, -0.5, 0.0, 0.0, 0.2, 0.0, 0.0],  # posture
    ]
)

POLICIES: tuple[str, ...] = ("agent", "random", "fixed_rules", "oracle")


@dataclass(frozen=True)
class SimulatedUser:
    """One person: ``weights`` (n_actions, n_sim_features) of the help logit, ``ignore_probability`` 0..1."""

    weights: np.ndarray
    ignore_probability: float

    def help_probabilities(self, context: dict[str, Any]) -> np.ndarray:
        """P(helpful) of every action in ``LEARNED_ACTIONS`` order for ``context``."""
        return 1.0 / (1.0 + np.exp(-(self.weights @ sim_features(context))))

    def expected_rewards(self, context: dict[str, Any]) -> np.ndarray:
        """Expected explicit reward of every action (``LEARNED_ACTIONS`` order)."""
        ignored = self.ignore_probability
        return (1.0 - ignored) * self.help_probabilities(context) + ignored * EXPLICIT_REWARDS["ignored"]

    def respond(self, context: dict[str, Any], action: str, u_ignore: float, u_help: float) -> float:
        """The reward this person gives ``action`` given two uniform draws (shared across policies)."""
        if u_ignore < self.ignore_probability:
            return EXPLICIT_REWARDS["ignored"]
        p_help = self.help_probabilities(context)[LEARNED_ACTIONS.index(action)]
        return EXPLICIT_REWARDS["helpful"] if u_help < p_help else EXPLICIT_REWARDS["not_helpful"]


def sim_features(context: dict[str, Any]) -> np.ndarray:
    """The simulator's basis ``f(context)`` (order ``SIM_FEATURES``)."""
    return np.array(
        [
            1.0,
            context["drowsiness_probability"],
            context["perclos"],
            context["stress_score"] / 100.0,
            context["emotion_arousal"],
            -context["emotion_valence"],
            context["minutes_in_session"] / 60.0,
            math.exp(-(((context["hour_of_day"] - 15.0) / 3.0) ** 2)),
            context["heart_rate_delta_bpm"] / 30.0,
        ]
    )


def make_user(rng: np.random.Generator) -> SimulatedUser:
    """Draw a person around the prototype: slopes scaled by lognormal(0, 0.35), bias + N(0, 0.5), with
    probability 0.4 one disliked action (bias - 2.5), ignore probability U(0.05, 0.25)."""
    weights = PROTOTYPE_WEIGHTS.copy()
    weights[:, 1:] *= rng.lognormal(0.0, 0.35, size=weights[:, 1:].shape)
    weights[:, 0] += rng.normal(0.0, 0.5, size=len(weights))
    if rng.random() < 0.4:
        weights[rng.integers(len(weights)), 0] -= 2.5
    return SimulatedUser(weights=weights, ignore_probability=float(rng.uniform(0.05, 0.25)))


def make_context(rng: np.random.Generator, now_s: float) -> dict[str, Any]:
    """A check-in: calm (40 %), drowsy (25 %), stressed (25 %) or both (10 %), random session length and hour."""
    kind = rng.choice(4, p=[0.4, 0.25, 0.25, 0.1])
    drowsy, stressed = kind in (1, 3), kind in (2, 3)
    drowsiness = rng.uniform(0.55, 0.95) if drowsy else rng.uniform(0.0, 0.35)
    return {
        "drowsiness_probability": float(drowsiness),
        "perclos": float(np.clip(0.05 + 0.35 * drowsiness + rng.normal(0.0, 0.05), 0.0, 1.0)),
        "stress_score": float(rng.uniform(60, 95) if stressed else rng.uniform(5, 45)),
        "heart_rate_delta_bpm": float(rng.uniform(8, 25) if stressed else rng.normal(0, 4)),
        "emotion_valence": float(rng.uniform(-0.8, 0.1) if stressed else rng.uniform(-0.3, 0.7)),
        "emotion_arousal": float(rng.uniform(0.3, 0.9) if stressed else rng.uniform(-0.5, 0.4)),
        "minutes_in_session": float(rng.uniform(0, 180)),
        "hour_of_day": float(rng.uniform(8, 23)),
        "mode": "wellness",
        "face_present": True,
        "now": float(now_s),
    }


def fixed_rule_action(context: dict[str, Any]) -> str:
    """The hand-written rules a designer would start from (threshold rules on drowsiness and stress)."""
    if context["drowsiness_probability"] >= 0.6:
        return "micro_break"
    if context["stress_score"] >= 60:
        return "breathing"
    if context["minutes_in_session"] >= 120:
        return "hydrate"
    if context["minutes_in_session"] >= 20:
        return "eye_rest"
    return "posture"


def simulate(
    episodes: int = 500,
    seed: int = 0,
    *,
    users: int = 5,
    checkpoints: int = 10,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the agent, random, fixed rules and the oracle for ``episodes`` check-ins on each of ``users``
    simulated people (a fresh in-memory agent per person). Deterministic for a given ``seed``.

    Returns a JSON-able dict: per policy ``mean_reward`` (realised), ``mean_expected_reward``,
    ``cumulative_reward`` and ``cumulative_regret`` (per user, averaged over users), ``fraction_of_oracle``
    (mean expected reward / the oracle's) and the same over the second half (``second_half_fraction_of_oracle``);
    and ``regret_curve``: mean cumulative regret per user at ``checkpoints`` evenly spaced episodes.
    ``on_step(n)`` is called after each user-episode (for a progress bar).
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if not isinstance(users, int) or users < 1:
        raise ValueError(f"users must be a positive int, got {users!r}")
    n_actions = len(LEARNED_ACTIONS)
    realised = {p: np.zeros((users, episodes)) for p in POLICIES}
    expected = {p: np.zeros((users, episodes)) for p in POLICIES}
    for u in range(users):
        rng = np.random.default_rng([seed, u])
        user = make_user(rng)
        agent = InterventionAgent(mode="wellness", seed=seed * 1000 + u, store=None, profile=f"sim-{u}")
        for t in range(episodes):
            context = make_context(rng, now_s=3600.0 * (t + 1))
            u_ignore, u_help, u_random = rng.random(3)
            values = user.expected_rewards(context)
            suggestion = agent.suggest(context)
            if suggestion is None:  # cannot happen with hourly check-ins; kept explicit for safety
                raise RuntimeError(f"agent withheld a suggestion at episode {t}")
            choices = {
                "agent": suggestion.action,
                "random": LEARNED_ACTIONS[int(u_random * n_actions)],
                "fixed_rules": fixed_rule_action(context),
                "oracle": LEARNED_ACTIONS[int(np.argmax(values))],
            }
            for policy, action in choices.items():
                realised[policy][u, t] = user.respond(context, action, u_ignore, u_help)
                expected[policy][u, t] = values[LEARNED_ACTIONS.index(action)]
            agent.feedback(suggestion, realised["agent"][u, t])
            if on_step is not None:
                on_step(u * episodes + t + 1)
    oracle_mean = expected["oracle"].mean()
    half = episodes // 2
    oracle_second_half = expected["oracle"][:, half:].mean()
    marks = sorted({max(1, round(episodes * (i + 1) / checkpoints)) for i in range(checkpoints)})
    summary: dict[str, Any] = {"episodes": episodes, "users": users, "seed": seed, "policies": {}}
    curve: dict[str, Any] = {"episode": marks}
    for policy in POLICIES:
        regret = np.cumsum(expected["oracle"] - expected[policy], axis=1).mean(axis=0)
        summary["policies"][policy] = {
            "mean_reward": float(realised[policy].mean()),
            "mean_expected_reward": float(expected[policy].mean()),
            "cumulative_reward": float(realised[policy].sum(axis=1).mean()),
            "cumulative_regret": float(regret[-1]),
            "fraction_of_oracle": float(expected[policy].mean() / oracle_mean),
            "second_half_fraction_of_oracle": float(expected[policy][:, half:].mean() / oracle_second_half),
        }
        curve[policy] = [float(regret[m - 1]) for m in marks]
    summary["regret_curve"] = curve
    return summary
