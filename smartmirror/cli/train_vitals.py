"""``smartmirror train rppg DATASET_DIR``: train the ResNet-18 + TCN pulse network or UltraLightNet.

Heavy imports live inside the function so ``smartmirror --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

#: Per-architecture defaults (each network's published recipe): (window frames, batch, learning rate, input side, crop).
ARCH_DEFAULTS = {
    "resnet_tcn": (300, 6, 3e-4, 128, "face"),   # frames=300, batch=6, lr=3e-4, 128x128 face crop
    "ultralight": (180, 2, 1e-3, 36, "center"),  # 180-frame windows, batch 2, Adam 1e-3, 36x36 centre
}


def train_rppg(
    dataset_dir: Annotated[Path, typer.Argument(help="UBFC-style (<subject>/vid.avi + ground_truth.txt) or flat "
                                                     "(name.avi + name.txt) folder")],
    arch: Annotated[str, typer.Option(help="resnet_tcn (ResNet-18 + TCN, per-frame pulse) or ultralight "
                                           "(UltraLightNet, heart rate)")] = "resnet_tcn",
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
    from smartmirror.vitals.ground_truth import DatasetError
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
    except (FileNotFoundError, ValueError, VideoError, DatasetError) as exc:
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


def train_spo2(
    data_dir: Annotated[Path, typer.Argument(help="one folder per clip: <clip>/vid.avi + <clip>/spo2.csv "
                                                  "(time_s,spo2_percent lines from the reference oximeter)")],
    out: Annotated[Path, typer.Option(help="output folder (spo2_model.pt, spo2_training.json, cache/)")] = Path(
        "checkpoints/spo2"),
    epochs: Annotated[int, typer.Option(min=1, help="most epochs (early stopping may end sooner)")] = 200,
    patience: Annotated[int, typer.Option(min=1, help="epochs without a better validation loss before stopping")
                        ] = 40,
    window_frames: Annotated[int, typer.Option(min=8, max=200, help="frames (30 Hz) per colour-trace window")] = 200,
    hop_frames: Annotated[int, typer.Option(min=1, help="frames between window starts")] = 50,
    heldout_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="share of clips held out")] = 0.2,
    batch_size: Annotated[int, typer.Option(min=1, help="windows per batch")] = 32,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 3e-4,
    seed: Annotated[int, typer.Option(help="random seed (clip split, initialisation, augmentations)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as one JSON object")] = False,
) -> None:
    """Train the SpO2 Tiny Transformer on clips with reference oximeter readings; report the held-out error."""
    from smartmirror.frames import VideoError
    from smartmirror.vitals.spo2_data import SpO2DataError, train_from_folder

    log = None if json_out else (lambda message: typer.echo(message, err=True))
    try:
        result = train_from_folder(data_dir, out, window_frames=window_frames, hop_frames=hop_frames,
                                   heldout_fraction=heldout_fraction, epochs=epochs, patience=patience,
                                   batch_size=batch_size, lr=lr, seed=seed, log=log)
    except (FileNotFoundError, SpO2DataError, VideoError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        raise typer.Exit(code=2) from None
    if json_out:
        typer.echo(json.dumps(result.summary()))
        return
    first, best = result.history[0], min(result.history, key=lambda r: r["val_loss"])
    typer.echo(f"epochs {len(result.history)}: train loss {first['train_loss']:.4f} -> "
               f"{result.history[-1]['train_loss']:.4f}, best val loss {best['val_loss']:.4f} (epoch {best['epoch']})")
    typer.echo(f"held-out clips {', '.join(result.heldout_clips)} ({result.heldout_windows} windows): "
               f"MAE {result.heldout_mae_percent:.2f} %, RMSE {result.heldout_rmse_percent:.2f} % "
               f"(always the training mean: MAE {result.baseline_mae_percent:.2f} %)")
    typer.echo(f"model: {result.model_path} (used only where passed; the report keeps the ratio of ratios)")
