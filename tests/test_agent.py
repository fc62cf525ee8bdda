"""Intervention agent: learning on the simulator, cooldowns, the confidence gate, the driver safety rule,
context validation, rewards and the breathing pacer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smartmirror.agent import (
    CRITICAL_DROWSINESS,
    LEARNED_ACTIONS,
    MODE_ACTIONS,
    PULL_OVER_REALERT_S,
    ContextError,
    InterventionAgent,
    box_breathing_phase,
    context_features,
    explicit_reward,
    implicit_reward,
    parse_context,
    simulate,
)
from smartmirror.agent.simulator import make_context

MIN = 60.0  # seconds


def calm(now: float, **extra) -> dict:
    """A complete, unremarkable wellness context at ``now`` seconds."""
    return {
        "drowsiness_probability": 0.1,
        "perclos": 0.08,
        "stress_score": 30.0,
        "heart_rate_delta_bpm": 2.0,
        "emotion_valence": 0.2,
        "emotion_arousal": 0.0,
        "minutes_in_session": 45.0,
        "hour_of_day": 14.0,
        "mode": "wellness",
        "face_present": True,
        "now": now,
    } | extra


# --- learning on the simulator -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_agent_beats_random_and_fixed_rules_and_nears_oracle_after_a_few_hundred_interactions(seed):
    result = simulate(episodes=400, seed=seed, users=5)
    p = result["policies"]
    agent, random_, rules = p["agent"], p["random"], p["fixed_rules"]
    # After the first 200 interactions per user (the second half), the learned policy is clearly better.
    assert agent["second_half_fraction_of_oracle"] >= 0.80
    assert agent["second_half_fraction_of_oracle"] > rules["second_half_fraction_of_oracle"] + 0.03
    assert agent["second_half_fraction_of_oracle"] > random_["second_half_fraction_of_oracle"] + 0.2
    # Over the whole run, exploration included, it is still at >= 80 % of the oracle and far above random.
    assert agent["fraction_of_oracle"] >= 0.80
    assert agent["mean_reward"] > random_["mean_reward"] + 0.1
    # Regret grows ever more slowly: the last tenth costs less than the first tenth.
    curve = np.diff([0.0, *result["regret_curve"]["agent"]])
    assert curve[-1] < 0.5 * curve[0]
    rules_curve = np.diff([0.0, *result["regret_curve"]["fixed_rules"]])
    assert curve[-1] < rules_curve[-1]


def test_simulation_is_deterministic_and_json_able():
    a = simulate(episodes=60, seed=3, users=2)
    b = simulate(episodes=60, seed=3, users=2)
    c = simulate(episodes=60, seed=4, users=2)
    assert a == b
    assert a != c
    assert json.loads(json.dumps(a)) == a
    assert a["policies"]["oracle"]["cumulative_regret"] == 0.0
    assert a["regret_curve"]["episode"][-1] == 60
    with pytest.raises(ValueError, match="episodes"):
        simulate(episodes=0)


def test_linucb_matches_mabwiser_reference():
    """Our LinUCB scores equal MABWiser's LinUCB on the same observations."""
    from mabwiser.mab import MAB, LearningPolicy

    rng = np.random.default_rng(7)
    agent = InterventionAgent(seed=0, alpha=0.5)
    xs, arms, rewards = [], [], []
    for t in range(120):
        x = context_features(parse_context(make_context(rng, t * 3600.0), default_mode="wellness"))
        arm = LEARNED_ACTIONS[t % len(LEARNED_ACTIONS)]
        reward = float(rng.random() < 0.3 + 0.5 * x[3])
        agent.policy_.update(x, arm, reward)
        xs.append(x), arms.append(arm), rewards.append(reward)
    reference = MAB(list(LEARNED_ACTIONS), LearningPolicy.LinUCB(alpha=0.5, l2_lambda=1.0), seed=0)
    reference.fit(arms, rewards, np.array(xs))
    probes = np.array(
        [context_features(parse_context(make_context(rng, 0.0), default_mode="wellness")) for _ in range(20)]
    )
    expected = reference.predict_expectations(probes)
    for x, ref in zip(probes, expected, strict=True):
        ours = agent.policy_.upper_bounds(x)
        np.testing.assert_allclose(ours, [ref[a] for a in LEARNED_ACTIONS], rtol=1e-9, atol=1e-9)


# --- cooldowns and the confidence gate -----------------------------------------------------------------------


def test_at_most_one_suggestion_per_interval_using_context_now():
    agent = InterventionAgent(seed=0, min_interval_minutes=10.0)
    first = agent.suggest(calm(now=1000.0))
    assert first is not None and first.created_at_s == 1000.0
    for dt in (1.0, 5 * MIN, 9.99 * MIN):
        assert agent.suggest(calm(now=1000.0 + dt)) is None
    assert agent.suggest(calm(now=1000.0 + 10 * MIN)) is not None


def test_context_minutes_since_last_suggestion_also_holds_back():
    agent = InterventionAgent(seed=0)
    assert agent.suggest(calm(now=0.0, minutes_since_last_suggestion=3.0)) is None
    assert agent.suggest(calm(now=0.0, minutes_since_last_suggestion=11.0)) is not None


def _agent_that_loves(action: str) -> InterventionAgent:
    agent = InterventionAgent(seed=0)
    x = context_features(parse_context(calm(now=0.0), default_mode="wellness"))
    for _ in range(50):
        agent.policy_.update(x, action, 1.0)
    return agent


def test_dismissed_action_not_repeated_within_block_but_ignored_is():
    agent = _agent_that_loves("breathing")
    first = agent.suggest(calm(now=0.0))
    assert first.action == "breathing"
    agent.feedback(first, explicit_reward("not_helpful"))
    # Still the bandit's favourite by far, yet blocked for 30 minutes after the dismissal.
    assert agent.policy_.upper_bounds(np.asarray(first.features)).argmax() == LEARNED_ACTIONS.index("breathing")
    for t in (10 * MIN, 20 * MIN):
        s = agent.suggest(calm(now=t))
        assert s is not None and s.action != "breathing"
        agent.feedback(s, 0.25)
    back = agent.suggest(calm(now=30 * MIN))
    assert back is not None and back.action == "breathing"
    agent.feedback(back, explicit_reward("ignored"))  # ignored is not a dismissal
    assert agent.suggest(calm(now=40 * MIN)).action == "breathing"


def test_no_face_no_suggestion_and_no_cooldown_spent():
    agent = InterventionAgent(seed=0)
    assert agent.suggest(calm(now=0.0, face_present=False)) is None
    assert agent.suggest(calm(now=1.0)) is not None


# --- driver safety rule --------------------------------------------------------------------------------------


def test_driver_pull_over_on_critical_drowsiness_bypasses_cooldown_and_face_gate():
    agent = InterventionAgent(mode="driver", seed=0)
    ordinary = agent.suggest(calm(now=0.0, mode="driver"))
    assert ordinary is not None and ordinary.action in MODE_ACTIONS["driver"]
    agent.feedback(ordinary, 0.0)
    alert = agent.suggest(calm(now=5.0, mode="driver", drowsiness_probability=CRITICAL_DROWSINESS, face_present=False))
    assert alert is not None and alert.action == "pull_over" and alert.source == "safety_rule"
    # Re-alert interval: quiet (no other suggestion either) until it has passed, then raised again.
    assert agent.suggest(calm(now=5.0 + PULL_OVER_REALERT_S / 2, mode="driver", drowsiness_probability=0.95)) is None
    again = agent.suggest(calm(now=5.0 + PULL_OVER_REALERT_S, mode="driver", drowsiness_probability=0.95))
    assert again is not None and again.action == "pull_over"


def test_driver_pull_over_on_microsleep_and_never_learned():
    agent = InterventionAgent(mode="driver", seed=0)
    before = agent.get_state()["bandit"]
    s = agent.suggest(calm(now=0.0, drowsiness_probability=0.2, microsleep=True, mode=None))
    assert s.action == "pull_over"
    agent.feedback(s, 0.0)  # "not helpful" must neither teach the bandit nor silence the rule
    assert agent.get_state()["bandit"] == before
    assert agent.suggest(calm(now=PULL_OVER_REALERT_S, microsleep=True, mode=None)).action == "pull_over"


def test_driver_rule_holds_on_every_critical_context_and_only_there():
    agent = InterventionAgent(mode="driver", seed=1)
    rng = np.random.default_rng(5)
    for t in range(300):
        ctx = make_context(rng, now_s=t * 2 * PULL_OVER_REALERT_S) | {"mode": "driver"}
        ctx["microsleep"] = bool(rng.random() < 0.1)
        ctx["face_present"] = bool(rng.random() < 0.8)
        s = agent.suggest(ctx)
        critical = ctx["microsleep"] or ctx["drowsiness_probability"] >= CRITICAL_DROWSINESS
        if critical:
            assert s is not None and s.action == "pull_over"
        else:
            assert s is None or s.action in MODE_ACTIONS["driver"]
        if s is not None:
            agent.feedback(s, float(rng.random()))


def test_no_pull_over_outside_driver_mode():
    agent = InterventionAgent(mode="wellness", seed=0)
    s = agent.suggest(calm(now=0.0, drowsiness_probability=0.99, microsleep=True))
    assert s is not None and s.action in LEARNED_ACTIONS


# --- context, feedback and reward contracts -------------------------------------------------------------------


def test_missing_and_null_context_keys_use_documented_defaults():
    agent = InterventionAgent(seed=0)
    s = agent.suggest({"now": 0.0, "stress_score": None, "perclos": float("nan"), "something_else": "x"})
    assert s is not None and s.action in LEARNED_ACTIONS
    assert s.context["stress_score"] == 0.0 and s.context["perclos"] == 0.0 and s.context["face_present"] is True
    assert 0.0 <= s.context["hour_of_day"] < 24.0
    assert json.loads(json.dumps(s.to_dict()))["action"] == s.action
    assert InterventionAgent(seed=0).suggest({}) is not None  # wall clock


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"drowsiness_probability": 1.7}, "drowsiness_probability"),
        ({"stress_score": "high"}, "stress_score"),
        ({"emotion_valence": -3}, "emotion_valence"),
        ({"face_present": "yes"}, "face_present"),
        ({"mode": "party"}, "mode"),
        ({"now": math.inf}, "now"),
    ],
)
def test_malformed_context_raises_clear_error(context, key):
    with pytest.raises(ContextError, match=key):
        InterventionAgent(seed=0).suggest(context)
    with pytest.raises(ContextError, match="dict"):
        InterventionAgent(seed=0).suggest([("now", 0)])


def test_feedback_validation():
    agent = InterventionAgent(seed=0)
    s = agent.suggest(calm(now=0.0))
    for bad in (1.5, -0.1, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="reward"):
            agent.feedback(s, bad)
    agent.feedback(s, 1.0)
    with pytest.raises(ValueError, match="already has feedback"):
        agent.feedback(s, 1.0)
    other = InterventionAgent(seed=0).suggest(calm(now=0.0))
    with pytest.raises(ValueError, match="unknown"):
        agent.feedback(other, 1.0)
    with pytest.raises(ValueError, match="mode"):
        InterventionAgent(mode="car")


def test_explicit_and_implicit_rewards():
    assert [explicit_reward(k) for k in ("helpful", "ignored", "not_helpful")] == [1.0, 0.25, 0.0]
    with pytest.raises(ValueError, match="helpful"):
        explicit_reward("meh")
    before = {"drowsiness_probability": 0.7, "stress_score": 60.0}
    assert implicit_reward(before, before) == 0.5
    assert implicit_reward(before, {"drowsiness_probability": 0.5, "stress_score": 40.0}) == pytest.approx(1.0)
    assert implicit_reward(before, {"drowsiness_probability": 0.8, "stress_score": 60.0}) == pytest.approx(0.375)
    assert implicit_reward(before, {"drowsiness_probability": 0.95, "stress_score": 90.0}) == 0.0
    stress_only = implicit_reward({"stress_score": 80}, {"stress_score": 70, "drowsiness_probability": 0.1})
    assert stress_only == pytest.approx(0.75)
    with pytest.raises(ValueError, match="both"):
        implicit_reward({"stress_score": 50}, {"drowsiness_probability": 0.2})


def test_box_breathing_pacer():
    expected = [
        (0.0, "inhale", 0, 0.0),
        (2.0, "inhale", 0, 0.5),
        (4.0, "hold", 0, 1.0),
        (9.0, "exhale", 0, 0.75),
        (13.0, "hold", 0, 0.0),
        (18.0, "inhale", 1, 0.5),
    ]
    for t, label, cycle, scale in expected:
        phase = box_breathing_phase(t)
        assert (phase.label, phase.cycle) == (label, cycle)
        assert phase.scale == pytest.approx(scale)
        assert phase.seconds_left == pytest.approx(4.0 - (t % 4.0))
    assert box_breathing_phase(3.0, phase_s=6.0).label == "inhale"
    for bad in (-1.0, math.nan, "3"):
        with pytest.raises(ValueError, match="elapsed_s"):
            box_breathing_phase(bad)
