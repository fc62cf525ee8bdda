"""Heart-rate and pulse accuracy over a dataset of face videos with pulse ground truth, per clip and method.

:func:`evaluate_dataset` compares, per file, the heart rate of every 10 s window (sliding 1 s) with the same
window of the reference PPG (:mod:`smartmirror.vitals.accuracy`), and the normalised pulse with the normalised
reference PPG, and prints (and returns) per-file and mean MAE and RMSE. The datasets' layouts and ground-truth
files are read by :mod:`smartmirror.vitals.ground_truth`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.frames import VIDEO_SUFFIXES
from smartmirror.vitals.accuracy import pulse_errors, reference_heart_rates
from smartmirror.vitals.ground_truth import Clip, DatasetError, GroundTruth, find_clips, read_ground_truth

log = logging.getLogger(__name__)


def _empty_entry(name: str) -> dict[str, Any]:
    return {"name": name, "hr_true_bpm": None, "hr_pred_bpm": None, "hr_mae_bpm": None, "hr_rmse_bpm": None,
            "pulse_mae": None, "pulse_rmse": None, "coverage": None, "heart_rate_confidence": None, "frames": 0,
            "error": None}


def _score_trace(entry: dict[str, Any], trace: Any, truth: GroundTruth, method: str) -> None:
    """Fill one file's accuracy entry from its trace for one method."""
    from smartmirror.vitals.pipeline import analyze_trace
    from smartmirror.vitals.video import pulse_signal

    result = analyze_trace(trace, method=method)
    entry["frames"] = trace.frames
    entry["heart_rate_confidence"] = result.heart_rate.confidence
    readings = [r for r in result.readings if r.tracked_bpm is not None]
    ends = np.array([r.t_s for r in readings])
    predicted = np.array([r.tracked_bpm for r in readings])
    reference = reference_heart_rates(truth, ends) if len(ends) else np.zeros(0)
    both = np.isfinite(reference)
    if both.any():
        errors = predicted[both] - reference[both]
        entry["hr_mae_bpm"] = round(float(np.mean(np.abs(errors))), 3)
        entry["hr_rmse_bpm"] = round(float(np.sqrt(np.mean(errors**2))), 3)
        entry["hr_true_bpm"] = round(float(np.mean(reference[both])), 2)
        entry["coverage"] = round(float(np.mean([r.heart_rate_bpm is not None for r in readings])), 3)
    if result.heart_rate.tracked_bpm is not None:
        entry["hr_pred_bpm"] = round(float(result.heart_rate.tracked_bpm), 2)
    times, pulse = pulse_signal(trace, method=method)
    if len(times):
        entry["pulse_mae"], entry["pulse_rmse"] = pulse_errors(times, pulse, truth)


def evaluate_clip_methods(clip: Clip, methods: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per-file accuracy for several methods from one decode and one face-tracker pass: ``{method: entry}``.

    Each entry holds the window heart-rate MAE/RMSE (bpm), normalised-pulse MAE/RMSE, coverage and ``error``
    (``{"code", "message"}`` when the clip or its ground truth cannot be read; the same for every method).
    """
    from smartmirror.frames import VideoError
    from smartmirror.vitals.video import video_traces

    entries = {method: _empty_entry(clip.name) for method in methods}
    try:
        truth = read_ground_truth(clip.truth)
        traces = video_traces(clip.video, list(methods))
    except (DatasetError, VideoError) as exc:
        for entry in entries.values():
            entry["error"] = {"code": exc.code, "message": exc.message}
        return entries
    for method in methods:
        _score_trace(entries[method], traces[method], truth, method)
    return entries


def evaluate_clip(clip: Clip, *, method: str) -> dict[str, Any]:
    """Per-file accuracy: window heart-rate MAE/RMSE (bpm) and normalised-pulse MAE/RMSE."""
    return evaluate_clip_methods(clip, [method])[method]


def _mean(entries: list[dict[str, Any]], key: str) -> float | None:
    values = [e[key] for e in entries if e.get(key) is not None]
    return round(float(np.mean(values)), 3) if values else None


def _summary(method: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [e for e in entries if e["error"] is None]
    return {
        "method": method,
        "files": entries,
        "mean": {
            "hr_mae_bpm": _mean(ok, "hr_mae_bpm"),
            "hr_rmse_bpm": _mean(ok, "hr_rmse_bpm"),
            "pulse_mae": _mean(ok, "pulse_mae"),
            "pulse_rmse": _mean(ok, "pulse_rmse"),
            "coverage": _mean(ok, "coverage"),
            "files": len(entries),
            "files_failed": len(entries) - len(ok),
        },
    }


def dataset_clips(path: str | Path) -> list[Clip]:
    """:func:`find_clips`, with a plain answer for a file or a URL given where a dataset folder is expected.

    Raises
    ------
    DatasetError
        ``not_a_folder`` for a file or URL, else :func:`find_clips`'s codes.
    """
    text = str(path)
    if "://" in text and not text.startswith("file://"):
        raise DatasetError("not_a_folder", f"{text} is a URL; eval reads a dataset folder on a disk this machine "
                                           "and the workers share (URLs work for `smartmirror analyze`)")
    path = Path(text.removeprefix("file://"))
    if path.is_file():
        hint = f"; to analyse this one clip use `smartmirror analyze {path}`" \
            if path.suffix.lower() in VIDEO_SUFFIXES else ""
        raise DatasetError("not_a_folder", f"{path} is a file, not a dataset folder: eval takes a folder of clips "
                                           "with ground truth (<subject>/vid.avi + ground_truth.txt, or name.avi "
                                           f"+ name.txt){hint}")
    return [Clip(c.name, c.video.absolute(), c.truth.absolute()) for c in find_clips(path)]


def _evaluate_methods(path: str | Path, methods: list[str], cluster: Any = None) -> dict[str, dict[str, Any]]:
    """Every clip once (one task each: decode, track, every method), in-process or on a Dask cluster."""
    import functools

    from smartmirror.batch import TaskFailure, WarmModels, run_clips

    clips = dataset_clips(path)
    rows: list[dict[str, dict[str, Any]] | None] = [None] * len(clips)
    task = functools.partial(evaluate_clip_methods, methods=tuple(methods))
    for index, outcome in run_clips(task, clips, cluster, label=f"eval {','.join(methods)}",
                                    names=[c.name for c in clips], warm=WarmModels(methods)):
        if isinstance(outcome, TaskFailure):
            outcome = {m: {**_empty_entry(clips[index].name), "error": outcome.error()} for m in methods}
        rows[index] = outcome
    return {m: _summary(m, [row[m] for row in rows]) for m in methods}


def evaluate_dataset(path: str | Path, method: str | None = "pos", *, show: bool = True,
                     cluster: Any = None) -> dict[str, Any]:
    """Heart-rate and pulse accuracy over every clip of a dataset folder (the two-call pulse API's second call).

    Parameters
    ----------
    path : str or Path
        The dataset folder (UBFC-rPPG or flat clip + .txt layout).
    method : str, optional
        Pulse method name (e.g. ``pos``; None = the measured best,
        :data:`smartmirror.vitals.rppg.DEFAULT_METHOD`).
    show : bool
        Print the per-file table and the means (rich) on stdout; a progress bar goes to stderr either way.
    cluster : smartmirror.batch.ClusterOptions, optional
        Run the clips on a Dask cluster (``workers=N`` local processes or a ``scheduler`` address); default
        one after another in this process. The numbers are the same either way.

    Returns
    -------
    dict
        ``{"method", "files": [{"name", "hr_true_bpm", "hr_pred_bpm", "hr_mae_bpm", "hr_rmse_bpm",
        "pulse_mae", "pulse_rmse", "coverage", "heart_rate_confidence", "frames", "error"}], "mean": {...}}``.

    Raises
    ------
    DatasetError
        When the folder is missing, is a file or holds no clips; ValueError for an unknown method;
        :class:`smartmirror.batch.BatchError` when the cluster cannot be used.
    """
    from smartmirror.vitals.methods import get_method
    from smartmirror.vitals.rppg import DEFAULT_METHOD

    method = get_method(method or DEFAULT_METHOD).name
    result = _evaluate_methods(path, [method], cluster)[method]
    if show:
        _print_table(result)
    return result


def compare_methods(path: str | Path, methods: list[str], *, show: bool = True, cluster: Any = None
                    ) -> dict[str, Any]:
    """:func:`evaluate_dataset` for several methods (learned and unsupervised alike), side by side.

    Each clip is decoded and face-tracked once; every method then reads the shared trace (ROI colours, or
    face crops of the learned model's input size). Returns ``{"methods": [...], "results": {method:
    evaluate_dataset-shaped result}}``; with ``show`` prints one table: a row per file, the heart-rate MAE
    (bpm) of each method in its own column, and the means.
    """
    from smartmirror.vitals.methods import get_method

    names = list(dict.fromkeys(get_method(m).name for m in methods))
    results = _evaluate_methods(path, names, cluster)
    if show:
        _print_comparison(names, results)
    return {"methods": names, "results": results}


def _cell(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _print_comparison(methods: list[str], results: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Heart-rate MAE (bpm) by method")
    table.add_column("file")
    table.add_column("HR true")
    for method in methods:
        table.add_column(method)
    first = results[methods[0]]["files"]
    for i, entry in enumerate(first):
        row = [entry["name"], _cell(entry["hr_true_bpm"], 1)]
        row += [_cell(results[m]["files"][i]["hr_mae_bpm"]) for m in methods]
        table.add_row(*row)
    table.add_section()
    table.add_row("mean MAE", "", *[_cell(results[m]["mean"]["hr_mae_bpm"]) for m in methods])
    table.add_row("mean RMSE", "", *[_cell(results[m]["mean"]["hr_rmse_bpm"]) for m in methods])
    table.add_row("pulse MAE", "", *[_cell(results[m]["mean"]["pulse_mae"], 3) for m in methods])
    Console().print(table)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    cell = _cell
    table = Table(title=f"Heart-rate accuracy ({result['method']})")
    for column in ("file", "HR true", "HR pred", "HR MAE", "HR RMSE", "pulse MAE", "pulse RMSE", "note"):
        table.add_column(column)
    for e in result["files"]:
        note = e["error"]["code"] if e["error"] else ""
        table.add_row(e["name"], cell(e["hr_true_bpm"], 1), cell(e["hr_pred_bpm"], 1), cell(e["hr_mae_bpm"]),
                      cell(e["hr_rmse_bpm"]), cell(e["pulse_mae"], 3), cell(e["pulse_rmse"], 3), note)
    mean = result["mean"]
    table.add_section()
    table.add_row("mean", "", "", cell(mean["hr_mae_bpm"]), cell(mean["hr_rmse_bpm"]), cell(mean["pulse_mae"], 3),
                  cell(mean["pulse_rmse"], 3), f"{mean['files_failed']} failed" if mean["files_failed"] else "")
    Console().print(table)
