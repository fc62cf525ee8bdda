"""Datasets of face videos with pulse ground truth, and heart-rate / pulse accuracy over them.

Two layouts are understood (DESIGN.md):

- UBFC-rPPG: ``<root>/<subject>/vid.avi`` with ``ground_truth.txt`` (line 1 PPG, line 2 heart rate, line 3
  times in seconds) or DATASET_1's ``gtdump.xmp`` (CSV: time ms, heart rate, SpO2, PPG);
- the flat clip + .txt layout: ``<root>/<name>.avi`` with ``<root>/<name>.txt`` (the same three lines; the heart-rate
  line may be empty).

:func:`evaluate_dataset` compares, per file, the heart rate of every 10 s window (sliding 1 s) with the same
window of the reference PPG, and the normalised pulse with the normalised reference PPG, and prints (and returns)
per-file and mean MAE and RMSE.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.errors import CodedError
from smartmirror.frames import VIDEO_SUFFIXES

log = logging.getLogger(__name__)

#: Largest time shift (seconds) searched when aligning the video pulse with the reference PPG (finger or ear
#: sensors see the pulse wave later or earlier than the face).
MAX_PULSE_LAG_S = 0.5


class DatasetError(CodedError):
    """A dataset folder that cannot be evaluated; ``code`` is machine-readable."""


@dataclass(frozen=True)
class GroundTruth:
    """Reference signals of one clip."""

    ppg: np.ndarray                       # contact PPG (arbitrary units)
    times_s: np.ndarray                   # seconds, one per PPG sample (strictly increasing)
    heart_rate_bpm: np.ndarray | None     # the device's heart rate per sample (or None)
    notes: tuple[str, ...] = ()           # repairs made while reading (dropped samples), for the report


@dataclass(frozen=True)
class Clip:
    """One video with its ground-truth file."""

    name: str
    video: Path
    truth: Path
    notes: tuple[str, ...] = ()   # e.g. the same ground-truth file as another clip (a copying mistake)


def _numbers(line: str) -> np.ndarray:
    text = line.replace(",", " ").split()
    return np.array([float(v) for v in text], dtype=np.float64) if text else np.zeros(0)


#: Largest share of samples whose time is repeated or goes backwards that :func:`read_ground_truth` repairs (by
#: dropping them); a file with more is rejected as ``bad_ground_truth``.
MAX_REPAIRED_SHARE = 0.05


def drop_unordered_samples(times_s: np.ndarray) -> np.ndarray:
    """Boolean mask of the samples to keep so the times strictly increase: each kept sample is later than the last
    kept one (a repeated timestamp or a step back, as oximeter logs sometimes hold, drops the later sample)."""
    times_s = np.asarray(times_s, dtype=np.float64)
    keep = np.isfinite(times_s)
    last = -np.inf
    for i in np.flatnonzero(keep):
        if times_s[i] > last:
            last = times_s[i]
        else:
            keep[i] = False
    return keep


def _repaired(path: Path, ppg: np.ndarray, times: np.ndarray, heart_rate: np.ndarray | None) -> GroundTruth:
    """Drop samples out of time order (or with a non-finite time or PPG value), with a note; reject a file where
    more than :data:`MAX_REPAIRED_SHARE` of the samples would go."""
    keep = drop_unordered_samples(times) & np.isfinite(ppg)
    dropped = int(len(times) - keep.sum())
    notes: tuple[str, ...] = ()
    if dropped:
        if dropped > MAX_REPAIRED_SHARE * len(times) or keep.sum() < 10:
            raise DatasetError("bad_ground_truth", f"{path.name}: the times are not increasing ({dropped} of "
                                                   f"{len(times)} samples repeat or go back in time)")
        bad = np.flatnonzero(~keep)
        where = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        notes = (f"{path.name}: dropped {dropped} of {len(times)} samples whose time repeats or goes back "
                 f"(sample {where})",)
        log.info("%s", notes[0])
    return GroundTruth(ppg=ppg[keep], times_s=times[keep],
                       heart_rate_bpm=None if heart_rate is None else heart_rate[keep], notes=notes)


def read_ground_truth(path: str | Path) -> GroundTruth:
    """Read ``ground_truth.txt`` / ``name.txt`` (three lines) or UBFC's ``gtdump.xmp``.

    Oximeter logs sometimes repeat a timestamp (5 of UBFC-rPPG DATASET_2's subjects do, once each) or step back;
    such samples are dropped and listed in :attr:`GroundTruth.notes` (see :func:`drop_unordered_samples`).

    Raises
    ------
    DatasetError
        ``bad_ground_truth`` when the file cannot be parsed, its lines disagree in length, or more than
        :data:`MAX_REPAIRED_SHARE` of its samples are out of time order.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError("bad_ground_truth", f"{path.name}: cannot read ({exc})") from None
    try:
        if path.suffix.lower() == ".xmp":
            rows = [_numbers(line) for line in text.splitlines() if line.strip()]
            if not rows or any(len(row) < 4 for row in rows):
                raise ValueError("expected rows of: time ms, heart rate, SpO2, PPG")
            table = np.array([row[:4] for row in rows])
            if len(table) < 10:
                raise ValueError(f"only {len(table)} rows")
            return _repaired(path, table[:, 3], (table[:, 0] - table[0, 0]) / 1000.0, table[:, 1])
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) < 2:
            raise ValueError("expected three lines: PPG, heart rate (may be empty), times in seconds")
        ppg = _numbers(lines[0])
        times = _numbers(lines[2] if len(lines) >= 3 else lines[1])
        heart_rate = _numbers(lines[1]) if len(lines) >= 3 else np.zeros(0)
    except ValueError as exc:
        raise DatasetError("bad_ground_truth", f"{path.name}: {exc}") from None
    if len(ppg) < 10 or len(times) != len(ppg):
        raise DatasetError("bad_ground_truth", f"{path.name}: {len(ppg)} PPG values but {len(times)} times")
    if len(heart_rate) == 1:
        heart_rate = np.full(len(ppg), heart_rate[0])
    return _repaired(path, ppg, times, heart_rate if len(heart_rate) == len(ppg) else None)


def find_clips(root: str | Path) -> list[Clip]:
    """The clips under ``root`` in either layout (a single UBFC subject folder works too), sorted by name.

    Folders that cannot be listed and hidden ones are skipped. Two clips whose ground-truth files are byte for
    byte the same (public copies of UBFC-rPPG hold such a mix-up) each get a note in :attr:`Clip.notes`: one of
    the two references belongs to another recording.

    Raises
    ------
    DatasetError
        ``not_found`` when ``root`` is not a folder, ``no_clips`` when nothing with ground truth is inside.
    """
    import hashlib

    root = Path(root)
    if not root.is_dir():
        raise DatasetError("not_found", f"No such dataset folder: {root}")
    found: list[Clip] = []

    def listing(folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            log.warning("skipping %s: %s", folder, exc)
            return []

    def subject(folder: Path, name: str) -> None:
        entries = listing(folder)
        videos = [p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES and p.stem.lower() == "vid" and p.is_file()]
        by_name = {p.name.lower(): p for p in entries if p.is_file()}
        truth = by_name.get("ground_truth.txt") or by_name.get("gtdump.xmp")
        if videos and truth is not None:
            found.append(Clip(name, videos[0], truth))

    top = listing(root)
    subject(root, root.name)
    for folder in (p for p in top if p.is_dir()):
        subject(folder, folder.name)
    for video in (p for p in top if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES):
        truth = video.with_suffix(".txt")
        if truth.is_file():
            found.append(Clip(video.stem, video, truth))
    if not found:
        raise DatasetError("no_clips", f"No clips with ground truth in {root} (expected <subject>/vid.avi + "
                                       "ground_truth.txt, or name.avi + name.txt)")
    digests: dict[str, list[str]] = {}
    for clip in found:
        try:
            digests.setdefault(hashlib.sha256(clip.truth.read_bytes()).hexdigest(), []).append(clip.name)
        except OSError:
            continue  # read_ground_truth reports it
    clips = []
    for clip in found:
        twins = next((names for names in digests.values() if clip.name in names and len(names) > 1), [])
        others = [n for n in twins if n != clip.name]
        if others:
            note = f"{clip.truth.name} is the same file as {', '.join(others)}'s: one of them is another recording's"
            log.warning("%s: %s", clip.name, note)
            clip = Clip(clip.name, clip.video, clip.truth, (note,))
        clips.append(clip)
    return clips


def _normalised(signal: np.ndarray) -> np.ndarray:
    span = float(np.max(signal) - np.min(signal)) if len(signal) else 0.0
    return (signal - np.min(signal)) / span if span > 0 else np.zeros_like(signal)


def pulse_errors(times_s: np.ndarray, pulse: np.ndarray, truth: GroundTruth) -> tuple[float | None, float | None]:
    """MAE and RMSE between the [0, 1]-scaled pulse and the [0, 1]-scaled band-passed reference PPG.

    The reference is resampled at the pulse's times; the polarity and a lag of up to
    :data:`MAX_PULSE_LAG_S` are chosen to minimise the RMSE (sensor sites and polarity conventions differ).
    """
    from smartmirror.vitals.rppg import PULSE_BAND_HZ
    from smartmirror.vitals.signal import GRID_RATE_HZ, bandpass, resample_even

    inside = (times_s >= truth.times_s[0]) & (times_s <= truth.times_s[-1])
    if inside.sum() < 2 * GRID_RATE_HZ:
        return None, None
    grid, reference = resample_even(truth.times_s, truth.ppg, rate_hz=GRID_RATE_HZ)
    reference = bandpass(reference, sampling_rate=GRID_RATE_HZ, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    pred = _normalised(pulse[inside])
    best = (math.inf, math.inf)
    for lag in np.arange(-MAX_PULSE_LAG_S, MAX_PULSE_LAG_S + 1e-9, 1.0 / GRID_RATE_HZ):
        ref = np.interp(times_s[inside] + lag, grid, reference)
        for sign in (1.0, -1.0):
            diff = pred - _normalised(sign * ref)
            rmse = float(np.sqrt(np.mean(diff**2)))
            if rmse < best[1]:
                best = (float(np.mean(np.abs(diff))), rmse)
    return round(best[0], 4), round(best[1], 4)


def reference_heart_rates(truth: GroundTruth, window_ends_s: np.ndarray) -> np.ndarray:
    """The reference heart rate of each 10 s window ending at ``window_ends_s`` (spectral peak of the PPG).

    Falls back to the mean of the device's heart-rate line when the PPG window has no clear peak.
    """
    from smartmirror.vitals import heart
    from smartmirror.vitals.signal import GRID_RATE_HZ, resample_even

    grid, ppg = resample_even(truth.times_s, truth.ppg, rate_hz=GRID_RATE_HZ)
    rates = []
    for end in window_ends_s:
        pick = (grid > end - heart.WINDOW_S) & (grid <= end)
        rate = None
        if pick.sum() >= heart.MIN_WINDOW_S * GRID_RATE_HZ * 0.9:
            estimate = heart.estimate_window(ppg[pick], None, sampling_rate=GRID_RATE_HZ, t_end_s=end)
            rate = estimate.bpm if estimate.snr_db > -3.0 else None
        if rate is None and truth.heart_rate_bpm is not None:
            near = (truth.times_s > end - heart.WINDOW_S) & (truth.times_s <= end)
            values = truth.heart_rate_bpm[near]
            values = values[(values >= 30) & (values <= 240)]
            rate = float(values.mean()) if len(values) else None
        rates.append(np.nan if rate is None else rate)
    return np.asarray(rates, dtype=np.float64)


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
        Pulse method name (``pos`` as in DESIGN.md; None = the measured best,
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
