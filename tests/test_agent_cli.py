"""`smartmirror agent simulate` through a local typer app (the lead wires the same function into the CLI)."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from smartmirror.cli.agent import agent_simulate


def _app() -> typer.Typer:
    app = typer.Typer()
    agent = typer.Typer()
    agent.command("simulate")(agent_simulate)
    app.add_typer(agent, name="agent")
    return app


def test_simulate_json_is_one_object_matching_simulate():
    from smartmirror.agent import simulate

    result = CliRunner().invoke(_app(), ["agent", "simulate", "--episodes", "40", "--users", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload == simulate(40, 0, users=2)
    assert set(payload["policies"]) == {"agent", "random", "fixed_rules", "oracle"}


def test_simulate_table_and_bad_input():
    runner = CliRunner()
    result = runner.invoke(_app(), ["agent", "simulate", "-n", "30", "--users", "1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    for word in ("agent", "random", "fixed_rules", "oracle", "cumulative regret", "seed 2"):
        assert word in result.stdout
    bad = runner.invoke(_app(), ["agent", "simulate", "--episodes", "0"])
    assert bad.exit_code != 0 and "episodes" in bad.output and "Traceback" not in bad.output
