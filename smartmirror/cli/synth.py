"""``smartmirror synth OUT``: synthetic pulse videos with ground truth from a real face photo (UBFC layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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
