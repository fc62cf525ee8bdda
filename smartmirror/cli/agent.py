"""CLI: ``smartmirror agent simulate --episodes N [--seed S] [--users U] [--json]``.

Plain functions with typer annotations, registered in :mod:`smartmirror.cli.app`. Heavy imports stay
inside the function so ``smartmirror --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer


def agent_simulate(
    episodes: Annotated[int, typer.Option("--episodes", "-n", min=1, help="Check-ins per simulated user.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed for users, contexts and the agent.")] = 0,
    users: Annotated[int, typer.Option("--users", min=1, help="Number of simulated people.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Run the agent against simulated users and compare it with random, fixed rules and the oracle."""
    import json
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from smartmirror.agent.simulator import simulate

    err = Console(stderr=True)
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=json_out and not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("simulate", total=episodes * users)
        result = simulate(episodes, seed, users=users, on_step=lambda n: progress.update(task, completed=n))
    if json_out:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"{users} simulated users x {episodes} check-ins, seed {seed}")
    for column in ("policy", "reward", "cum. reward", "cum. regret", "% oracle", "2nd half %"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in result["policies"].items():
        table.add_row(
            name,
            f"{row['mean_reward']:.3f}",
            f"{row['cumulative_reward']:.1f}",
            f"{row['cumulative_regret']:.1f}",
            f"{100 * row['fraction_of_oracle']:.1f}",
            f"{100 * row['second_half_fraction_of_oracle']:.1f}",
        )
    curve = result["regret_curve"]
    regret = Table(title="cumulative regret per user (expected reward lost to the oracle)")
    for column in ("episode", "agent", "random", "fixed_rules"):
        regret.add_column(column, justify="right")
    for i, episode in enumerate(curve["episode"]):
        regret.add_row(str(episode), *(f"{curve[name][i]:.1f}" for name in ("agent", "random", "fixed_rules")))
    out = Console()
    out.print(table)
    out.print(regret)
