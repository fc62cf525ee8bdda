"""``smartmirror eval DATASET_DIR``: heart-rate accuracy over a folder of clips with ground truth (wired in
:mod:`smartmirror.cli.app`). Heavy imports live inside the function so ``smartmirror --help`` stays fast."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from smartmirror.cli.output import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    RetriesOption,
    SchedulerOption,
    WorkersOption,
    cluster_options,
    fail,
    print_json,
)
from smartmirror.errors import error_object

log = logging.getLogger(__name__)


def eval_dataset(
    dataset_dir: Annotated[Path, typer.Argument(help="A folder in the UBFC-rPPG or flat clip + .txt layout.")],
    method: Annotated[
        str | None,
        typer.Option(help="Pulse method (default: the measured best); several as 'pos,ica,me-pure', or 'all', "
                     "to compare learned and unsupervised methods side by side (each clip decoded once)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")] = False,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    retries: RetriesOption = 2,
) -> None:
    """Heart-rate and pulse accuracy over a folder of clips with ground truth: per file and mean MAE/RMSE.

    Exits non-zero (after printing the per-file errors) when every clip failed.
    """
    from smartmirror.batch import BatchError
    from smartmirror.vitals.evaluation import compare_methods, evaluate_dataset
    from smartmirror.vitals.ground_truth import DatasetError
    from smartmirror.vitals.methods import get_method, list_methods

    try:
        cluster = cluster_options(workers, scheduler, retries)
        if method is not None and ("," in method or method.strip().lower() == "all"):
            names = list_methods() if method.strip().lower() == "all" else [m.strip() for m in method.split(",")]
            for name in names:
                get_method(name)  # ValueError naming the valid methods, before any work
            result = compare_methods(dataset_dir, names, show=not json_out, cluster=cluster)
            summaries = list(result["results"].values())
        else:
            result = evaluate_dataset(dataset_dir, method=method, show=not json_out, cluster=cluster)
            summaries = [result]
    except (DatasetError, BatchError) as exc:
        fail(error_object(exc.code, exc.message), json_out, EXIT_BAD_INPUT)
    except ValueError as exc:
        fail(error_object("invalid_argument", str(exc)), json_out, EXIT_BAD_INPUT)
    except Exception as exc:
        log.exception("eval failed")
        fail(error_object("internal_error", f"{exc.__class__.__name__}: {exc}"), json_out, EXIT_INTERNAL)
    mean = summaries[0]["mean"]
    every_clip_failed = mean["files"] > 0 and mean["files_failed"] == mean["files"]
    if every_clip_failed:
        codes = sorted({e["error"]["code"] for e in summaries[0]["files"]})
        result = {**error_object("all_clips_failed", f"every one of the {mean['files']} clips failed "
                                 f"({', '.join(codes)}); see the per-file errors"), **result}
    if json_out:
        print_json(result)
    elif every_clip_failed:
        typer.echo(f"error (all_clips_failed): {result['error']['message']}", err=True)
    if every_clip_failed:
        raise typer.Exit(EXIT_BAD_INPUT)
