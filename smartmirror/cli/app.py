"""The ``smartmirror`` command: analyze, eval, serve, synth, train, agent.

Each subcommand's body lives in its own module of :mod:`smartmirror.cli`; this module only
wires them together, and heavy libraries are imported inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from smartmirror.cli.agent import agent_simulate
from smartmirror.cli.analyze import analyze, eval_dataset
from smartmirror.cli.serve import serve
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


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (UBFC layout: vid.avi, ground_truth.txt, truth.json).")],
    heart_rate: Annotated[float, typer.Option(help="Mean heart rate, beats/min.")] = 72.0,
    duration: Annotated[float, typer.Option(help="Clip length, seconds.")] = 20.0,
    respiration: Annotated[float, typer.Option(help="Respiration rate, breaths/min.")] = 15.0,
    fps: Annotated[float, typer.Option(help="Frame rate, frames/s.")] = 30.0,
    width: Annotated[int, typer.Option(help="Frame width, pixels.")] = 640,
    height: Annotated[int, typer.Option(help="Frame height, pixels.")] = 480,
    motion: Annotated[float, typer.Option(help="Head sway, pixels (standard deviation).")] = 0.0,
    noise: Annotated[float, typer.Option(help="Sensor noise, grey levels.")] = 1.0,
    drop_prob: Annotated[float, typer.Option(help="Probability that a frame is dropped.")] = 0.0,
    codec: Annotated[str, typer.Option(help="ffv1 (lossless), mjpeg, rawvideo, mpeg4 or h264.")] = "ffv1",
    subjects: Annotated[int, typer.Option(help="Make a dataset of this many clips with rates spread over 50-150.")] = 1,
    image: Annotated[Path | None, typer.Option(help="A face photo to animate (default: the astronaut).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write synthetic pulse videos with ground truth from a real face photo."""
    import cv2
    import numpy as np

    from smartmirror.synth import SynthConfig, make_clip

    face_image = None
    if image is not None:
        face_image = cv2.imread(str(image))
        if face_image is None:
            typer.echo(f"error: cannot read image {image}", err=True)
            raise typer.Exit(2)
    rates = [heart_rate] if subjects == 1 else list(np.linspace(50, 150, subjects))
    for i, rate in enumerate(rates):
        config = SynthConfig(
            duration_s=duration, fps=fps, width=width, height=height, heart_rate_bpm=float(rate),
            respiration_rate_bpm=respiration, head_motion_px=motion, noise_sd=noise, drop_prob=drop_prob,
            codec=codec, seed=seed + i,
        )
        directory = out if subjects == 1 else out / f"subject{i + 1:02d}"
        try:
            truth = make_clip(directory, config, image_bgr=face_image)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"{directory}: {truth.heart_rate_bpm:.1f} bpm, {len(truth.frame_times_s)} frames")


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
