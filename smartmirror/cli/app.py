"""The ``smartmirror`` command: analyze, eval, serve, synth, train, agent.

Each subcommand's body lives in its own module of :mod:`smartmirror.cli`; this module only
wires them together, and heavy libraries are imported inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import os

import typer

from smartmirror.cli.agent import agent_simulate
from smartmirror.cli.analyze import analyze
from smartmirror.cli.eval import eval_dataset
from smartmirror.cli.serve import serve
from smartmirror.cli.synth import synth
from smartmirror.cli.train_emotion import train_emotion
from smartmirror.cli.train_fatigue import train_fatigue
from smartmirror.cli.train_vitals import train_rppg, train_spo2

app = typer.Typer(
    help="SmartMirror: emotion, fatigue, stress and rPPG vitals from a face video. "
    "A wellness demo, not a medical device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train the emotion, fatigue, pulse or SpO2 model on your data.", no_args_is_help=True)
agent_app = typer.Typer(help="The intervention agent.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(agent_app, name="agent")

app.command("analyze", help="The whole report for one clip (--json: exactly one JSON object on stdout); over "
            "many clips (files, a folder, a glob, URLs) one JSON line per clip, optionally on a Dask cluster "
            "(--workers N, --scheduler tcp://HOST:8786).")(analyze)
app.command("eval", help="Heart-rate accuracy over a folder of clips with ground truth "
            "(UBFC or flat clip + .txt layout), "
            "in-process or on a Dask cluster (--workers N, --scheduler tcp://HOST:8786).")(eval_dataset)
app.command("serve", help="The REST API (binds 127.0.0.1 by default).")(serve)
train_app.command("emotion", help="Train NovelEmotionModel (EfficientNet-B3) on a folder-per-class or AffectNet set.")(
    train_emotion
)
train_app.command("fatigue", help="Train the 5-feature drowsiness MLP on the Driver Drowsiness Dataset layout.")(
    train_fatigue
)
train_app.command("rppg", help="Train a learned pulse extractor on a UBFC or flat clip + .txt dataset.")(train_rppg)
train_app.command("spo2", help="Train the SpO2 Tiny Transformer on clips with reference oximeter readings.")(train_spo2)
agent_app.command("simulate", help="Simulated users: the agent against random, fixed rules and the oracle.")(
    agent_simulate
)
app.command("synth", help="Write synthetic pulse videos with ground truth from a real face photo.")(synth)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=os.environ.get("SMARTMIRROR_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s"
    )
    app()


if __name__ == "__main__":
    main()
