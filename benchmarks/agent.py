"""Benchmark the intervention agent: suggest+feedback latency (in memory and with the SQLite store) and the
regret curve on the user simulator.

    .venv/bin/python benchmarks/agent.py [--repeats 5] [--calls 2000] [--episodes 500] [--json]

Latency is the median over ``repeats`` runs of the per-call median, in microseconds; each call is one
``suggest(context)`` plus one ``feedback(suggestion, reward)`` on a fresh hourly check-in (so cooldowns never
skip the work).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from smartmirror.agent import InterventionAgent, simulate
from smartmirror.agent.simulator import make_context


def suggest_feedback_us(calls: int, store: Path | None, seed: int) -> float:
    """Median microseconds of one suggest + feedback over ``calls`` calls."""
    rng = np.random.default_rng(seed)
    contexts = [make_context(rng, now_s=3600.0 * (t + 1)) for t in range(calls)]
    rewards = rng.random(calls)
    agent = InterventionAgent(seed=seed, store=store)
    times = np.empty(calls)
    for i, context in enumerate(contexts):
        start = time.perf_counter()
        suggestion = agent.suggest(context)
        agent.feedback(suggestion, float(rewards[i]))
        times[i] = time.perf_counter() - start
    agent.close()
    return float(np.median(times) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    memory = [suggest_feedback_us(args.calls, None, seed) for seed in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = [
            suggest_feedback_us(args.calls, Path(tmp) / f"agent{seed}.sqlite3", seed) for seed in range(args.repeats)
        ]
    runs = []
    for seed in range(args.repeats):
        start = time.perf_counter()
        runs.append(simulate(args.episodes, seed, users=args.users))
        runs[-1]["wall_s"] = time.perf_counter() - start

    def med(policy: str, key: str) -> float:
        return statistics.median(r["policies"][policy][key] for r in runs)

    curve_episodes = runs[0]["regret_curve"]["episode"]
    curve = {
        p: [statistics.median(r["regret_curve"][p][i] for r in runs) for i in range(len(curve_episodes))]
        for p in ("agent", "random", "fixed_rules")
    }
    result = {
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "suggest_feedback_us": {"in_memory": statistics.median(memory), "sqlite_wal": statistics.median(sqlite)},
        "simulator": {
            "episodes": args.episodes,
            "users": args.users,
            "seeds": args.repeats,
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "policies": {
                p: {
                    k: med(p, k)
                    for k in (
                        "mean_reward",
                        "cumulative_regret",
                        "fraction_of_oracle",
                        "second_half_fraction_of_oracle",
                    )
                }
                for p in ("agent", "random", "fixed_rules", "oracle")
            },
            "regret_curve": {"episode": curve_episodes, **curve},
        },
    }
    if args.json:
        print(json.dumps(result))
        return
    lat = result["suggest_feedback_us"]
    print(f"suggest+feedback, median of {args.repeats} runs x {args.calls} calls ({result['machine']}):")
    print(f"  in memory       {lat['in_memory']:8.1f} us")
    print(f"  SQLite (WAL)    {lat['sqlite_wal']:8.1f} us")
    sim = result["simulator"]
    print(
        f"simulator: {args.users} users x {args.episodes} check-ins, median over {args.repeats} seeds "
        f"({sim['wall_s']:.2f} s per run)"
    )
    print(f"  {'policy':<12} {'reward':>7} {'regret':>7} {'% oracle':>9} {'2nd half %':>11}")
    for name, row in sim["policies"].items():
        print(
            f"  {name:<12} {row['mean_reward']:7.3f} {row['cumulative_regret']:7.1f} "
            f"{100 * row['fraction_of_oracle']:9.1f} {100 * row['second_half_fraction_of_oracle']:11.1f}"
        )
    print("cumulative regret per user at episode:")
    print("  " + f"{'':<12}" + "".join(f"{e:>7}" for e in curve_episodes))
    for name, values in curve.items():
        print(f"  {name:<12}" + "".join(f"{v:7.1f}" for v in values))


if __name__ == "__main__":
    main()
