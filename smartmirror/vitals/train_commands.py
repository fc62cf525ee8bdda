"""``smartmirror train rppg DATASET_DIR``: train seed 001's ResNet-18 + TCN or seed 003's UltraLightNet.

Heavy imports live inside the function so ``smartmirror --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

#: Per-architecture defaults from the seeds: (window frames, batch, learning rate, input side, crop).
ARCH_DEFAULTS = {
    "resnet_tcn": (300, 6, 3e-4, 128, "face"),   # seed 001: frames=300, batch=6, lr=3e-4, 128x128 face crop
    "ultralight": (180, 2, 1e-3, 36, "center"),  # seed 003: 180-frame windows, batch 2, Adam 1e-3, 36x36 centre
}


def train_rppg(
    dataset_dir: Annotated[Path, typer.Argument(help="UBFC-style (<subject>/vid.avi + ground_truth.txt) or flat "
                                                     "(name.avi + name.txt) folder")],
    arch: Annotated[str, typer.Option(help="resnet_tcn (seed 001, per-frame pulse) or ultralight (seed 003, "
                                           "heart rate)")] = "resnet_tcn",
    epochs: Annotated[int, typer.Option(min=1, help="total epochs (a resumed run continues up to this)")] = 30,
    out: Annotated[Path, typer.Option(help="checkpoint folder (last.pt, best.pt)")] = Path("checkpoints/rppg"),
    window_frames: Annotated[int | None, typer.Option(help="frames per training window")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="windows per batch")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate")] = None,
    input_size: Annotated[int | None, typer.Option(min=16, help="side of the square face crop, pixels")] = None,
    width: Annotated[int, typer.Option(min=4, help="ResNet-18 first-stage channels (64 = standard)")] = 64,
    crop: Annotated[str | None, typer.Option(help="face (FaceMesh box) or center")] = None,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="continue out/last.pt if present")] = True,
    device: Annotated[str | None, typer.Option(help="cuda or cpu (default: the GPU when present)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the history as one JSON object")] = False,
) -> None:
    """Train a learned rPPG network on a dataset folder, with resumable checkpoints and a progress bar."""
    from smartmirror.frames import VideoError
    from smartmirror.vitals.training import ARCHS, TrainConfig
    from smartmirror.vitals.training import train_rppg as run_training

    if arch not in ARCHS:
        typer.echo(f"error: unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}", err=True)
        raise typer.Exit(code=2)
    default_window, default_batch, default_lr, default_side, default_crop = ARCH_DEFAULTS[arch]
    side = input_size or default_side
    config = TrainConfig(
        arch=arch, epochs=epochs, lr=lr or default_lr, batch_size=batch_size or default_batch,
        window_frames=window_frames or default_window, input_size=(side, side), width=width,
        crop=crop or default_crop,
    )
    try:
        result = run_training(dataset_dir, out, config, resume=resume, device=device,
                              progress=not json_out and sys.stderr.isatty())
    except (FileNotFoundError, ValueError, VideoError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        raise typer.Exit(code=2) from None
    if json_out:
        typer.echo(json.dumps({"checkpoint": str(result.checkpoint), "best_checkpoint": str(result.best_checkpoint),
                               "history": result.history}))
        return
    for record in result.history:
        typer.echo(f"epoch {record['epoch']:3d}  train loss {record['train_loss']:.4f}  "
                   f"val loss {record['val_loss']:.4f}  val HR MAE {record['val_hr_mae_bpm']:.2f} bpm")
    typer.echo(f"checkpoints: {result.checkpoint} (last), {result.best_checkpoint} (best)")
