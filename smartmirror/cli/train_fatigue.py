"""CLI: ``smartmirror train fatigue DIR [--out FILE] [--seed S] [--max-epochs N] [--limit N] [--json]``.

A plain function with typer annotations, registered in :mod:`smartmirror.cli.app`. Heavy imports stay inside the
function so ``smartmirror --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartmirror.paths import WEIGHTS_DIR


def train_fatigue(
    data_dir: Annotated[
        Path, typer.Argument(help="Driver Drowsiness Dataset layout: folders 'Drowsy' and 'Non Drowsy' of face images.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the joblib model [default: weights/fatigue_mlp.joblib]."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the 70/15/15 split and of the MLP.")] = 0,
    max_epochs: Annotated[
        int, typer.Option("--max-epochs", min=1, help="Most epochs (early stopping on validation accuracy).")
    ] = 200,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use at most this many images per class (a quick run).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Train the drowsiness MLP (EAR, MAR, yawn flag, head tilt, pitch ratio -> 32 -> 16 -> 2).

    The model is used only when passed explicitly (FatigueAnalyzer(mlp_path=...)); the shipped default stays the
    transparent scoring.
    """
    import json
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from smartmirror.fatigue.training import DatasetError, train_from_folder

    out_path = out if out is not None else WEIGHTS_DIR / "fatigue_mlp.joblib"
    err = Console(stderr=True)
    try:
        with Progress(
            TextColumn("face landmarks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=json_out and not sys.stderr.isatty(),
        ) as progress:
            task = progress.add_task("images", total=None)
            report = train_from_folder(
                data_dir,
                out_path,
                seed=seed,
                max_epochs=max_epochs,
                limit_per_class=limit,
                on_total=lambda n: progress.update(task, total=n),
                on_image=lambda n: progress.update(task, completed=n),
            )
    except DatasetError as exc:
        if json_out:
            typer.echo(json.dumps({"error": {"code": "bad_dataset", "message": str(exc)}}))
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        message = f"cannot write {out_path}: {exc.strerror or exc}"
        if json_out:
            typer.echo(json.dumps({"error": {"code": "write_failed", "message": message}}))
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(report))
        return
    table = Table(title=f"fatigue MLP trained on {data_dir.name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("images", "skipped_no_face", "n_drowsy", "n_non_drowsy", "n_train", "n_val", "n_test", "best_epoch"):
        table.add_row(key, str(report[key]))
    for key in ("val_accuracy", "test_accuracy", "test_balanced_accuracy"):
        table.add_row(key, f"{report[key]:.3f}")
    Console().print(table)
    typer.echo(f"model written to {report['model_path']} (use it with FatigueAnalyzer(mlp_path=...))")
