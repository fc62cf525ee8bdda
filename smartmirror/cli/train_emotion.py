"""CLI: ``smartmirror train emotion DATA_DIR [--out DIR] [--model NAME] [--epochs N] ... [--json]``.

A plain function with typer annotations, registered in :mod:`smartmirror.cli.app`. Heavy imports stay
inside the function so ``smartmirror --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_emotion(
    data_dir: Annotated[
        Path,
        typer.Argument(help="Dataset folder: DIR/<class>/*.jpg (optionally under train/ and val/) or AffectNet-YOLO."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for last.pt (resumable) and best.pt.")] = Path(
        "runs/emotion"
    ),
    model: Annotated[
        str, typer.Option("--model", help="Registered architecture: novel_emotion_b3 (seed), novel_emotion_b0, ...")
    ] = "novel_emotion_b3",
    backbone: Annotated[
        str | None, typer.Option("--backbone", help="Override the timm backbone (e.g. efficientnet_b0).")
    ] = None,
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=32, help="Square input side in pixels (model default: 224).")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs (early stopping may end sooner).")] = 15,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate.")] = 1e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 1e-5,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", min=0.0, max=0.95, help="Held out per class when there is no val/ split.")
    ] = 0.15,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Early-stopping patience in epochs.")] = 5,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Data-loading worker processes.")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cuda or cpu (default: cuda when available).")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from OUT/last.pt if present.")] = True,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn the training augmentations off.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (history and checkpoints).")] = False,
) -> None:
    """Train an emotion model (NovelEmotionModel recipe); use the result with SMARTMIRROR_EMOTION_MODEL=OUT/best.pt."""
    import json
    import sys

    from smartmirror.emotion.data import DatasetError
    from smartmirror.emotion.train import TrainConfig
    from smartmirror.emotion.train import train_emotion as run_training

    config = TrainConfig(
        model=model,
        backbone=backbone,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        val_fraction=val_fraction,
        early_stopping_patience=patience,
        num_workers=workers,
        augment=not no_augment,
        seed=seed,
    )

    def report(row: dict) -> None:
        if not json_out:
            typer.echo(
                f"epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                f"val_acc {row['val_accuracy']:.3f}  lr {row['lr']:.2e}",
                err=True,
            )

    try:
        result = run_training(
            data_dir, out, config, device=device, resume=resume, progress=sys.stderr.isatty(), on_epoch=report
        )
    except (DatasetError, ValueError, FileNotFoundError, FloatingPointError) as exc:
        if json_out:
            typer.echo(json.dumps({"error": {"code": "train_failed", "message": str(exc)}}))
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    summary = {
        "labels": list(result.labels),
        "class_counts": result.class_counts,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
        "best_checkpoint": str(result.best_checkpoint),
        "last_checkpoint": str(result.last_checkpoint),
        "history": result.history,
    }
    if json_out:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"best epoch {result.best_epoch} (val_loss {result.best_val_loss:.4f}); model: {result.best_checkpoint}\n"
        f"use it: SMARTMIRROR_EMOTION_MODEL={result.best_checkpoint} smartmirror ..."
    )
