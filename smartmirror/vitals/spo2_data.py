"""SpO2 training data: clips with reference oximeter readings -> ROI colour-trace windows with SpO2 targets.

Layout understood by :func:`find_spo2_clips` (one folder per clip)::

    DATA_DIR/<clip>/<video>.avi|.mp4|.mkv|.mov|.webm   the face video (the first one, ``vid.*`` preferred)
    DATA_DIR/<clip>/spo2.csv                             the reference oximeter's readings for that clip

``spo2.csv`` holds one reading per line, ``time_s,spo2_percent`` (seconds on the video's clock; a header line
is allowed), or a single ``spo2_percent`` value for the whole clip. Lines starting with ``#`` are comments.

Each clip is decoded and tracked (``smartmirror.vitals.video.video_trace``: FaceMesh, the skin ROI's mean R, G,
B per frame), split at face gaps and resampled to 30 Hz (``pipeline.build_segments``), and cut into windows of
``window_frames`` (at most the model's 200) every ``hop_frames``. A window's features are its colour relative to
the window mean (``rgb / mean - 1``, per channel and frame); its target is the mean of the
reference readings interpolated over the window.

:func:`synthetic_bvp_weights` gives ``smartmirror.synth`` clips an SpO2: the red pulse amplitude follows the same
*assumed* linear ratio-of-ratios law as the tests' synthetic traces (for tests and demos only).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartmirror.frames import VIDEO_SUFFIXES
from smartmirror.synth import BVP_WEIGHTS_BGR
from smartmirror.vitals.pipeline import build_segments
from smartmirror.vitals.signal import GRID_RATE_HZ
from smartmirror.vitals.spo2_model import MAX_T, train_spo2_transformer
from smartmirror.vitals.video import video_trace

REFERENCE_FILE = "spo2.csv"
#: Plausible oximeter readings, percent; others are rejected as typos.
READING_RANGE = (50.0, 100.0)


class SpO2DataError(ValueError):
    """A data folder or reference file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SpO2Clip:
    """One video and its reference readings (``times_s`` None: one reading for the whole clip)."""

    name: str
    video: Path
    times_s: np.ndarray | None
    spo2_percent: np.ndarray

    def target(self, start_s: float, stop_s: float) -> float:
        """Mean reference SpO2 over [start_s, stop_s] (readings interpolated linearly, held at the ends)."""
        if self.times_s is None:
            return float(self.spo2_percent.mean())
        grid = np.linspace(start_s, stop_s, 16)
        return float(np.interp(grid, self.times_s, self.spo2_percent).mean())


@dataclass(frozen=True)
class SpO2Windows:
    """Windows of one or more clips: features (n, time, 3), targets (n,) percent, the clip of each window."""

    features: np.ndarray
    targets: np.ndarray
    clip_names: np.ndarray


def read_reference(path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """(times_s or None, spo2_percent) from a ``spo2.csv``.

    Raises
    ------
    SpO2DataError
        Empty file, unparsable line, a reading outside 50-100 %, or times that do not increase.
    """
    rows: list[list[str]] = []
    with open(path, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            cells = [cell.strip() for cell in row if cell.strip()]
            if not cells or cells[0].startswith("#"):
                continue
            try:
                rows.append([float(cell) for cell in cells])
            except ValueError:
                if rows or not any(c.isalpha() for c in "".join(cells)):
                    raise SpO2DataError(f"{path}:{line_no}: not a number in {row!r}") from None
                continue  # the header line, before any reading
    if not rows:
        raise SpO2DataError(f"{path}: no readings")
    widths = {len(r) for r in rows}
    if widths == {1} and len(rows) == 1:
        times, values = None, np.array([rows[0][0]])
    elif widths == {2}:
        table = np.asarray(rows)
        times, values = table[:, 0], table[:, 1]
        if np.any(np.diff(times) <= 0):
            raise SpO2DataError(f"{path}: reading times must increase")
    else:
        raise SpO2DataError(f"{path}: expected 'time_s,spo2_percent' lines or one 'spo2_percent' value")
    low, high = READING_RANGE
    bad = (values < low) | (values > high) | ~np.isfinite(values)
    if bad.any():
        raise SpO2DataError(f"{path}: readings outside {low:.0f}-{high:.0f} %: {values[bad][:5].tolist()}")
    return times, values.astype(np.float64)


def find_spo2_clips(data_dir: str | Path) -> list[SpO2Clip]:
    """Every ``<clip>/`` folder of ``data_dir`` with a video and a ``spo2.csv``, sorted by name.

    Raises
    ------
    SpO2DataError
        Missing folder, a clip folder with a reference file but no video, or no clip at all.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise SpO2DataError(f"not a folder: {root}")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        reference = folder / REFERENCE_FILE
        if not reference.is_file():
            continue
        videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        videos.sort(key=lambda p: p.stem != "vid")
        if not videos:
            raise SpO2DataError(f"{folder}: {REFERENCE_FILE} but no video ({', '.join(VIDEO_SUFFIXES)})")
        times, values = read_reference(reference)
        clips.append(SpO2Clip(folder.name, videos[0], times, values))
    if not clips:
        raise SpO2DataError(f"no clips in {root}: expected <clip>/vid.avi with <clip>/{REFERENCE_FILE}")
    return clips


def relative_windows(rgb: np.ndarray, window_frames: int, hop_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows (n, window_frames, 3) of ``rgb / window mean - 1``, start index of each) from an even-rate trace."""
    if window_frames > MAX_T or window_frames < 8:
        raise ValueError(f"window_frames must be 8..{MAX_T}, got {window_frames}")
    if hop_frames < 1:
        raise ValueError(f"hop_frames must be >= 1, got {hop_frames}")
    starts = np.arange(0, len(rgb) - window_frames + 1, hop_frames)
    windows = np.empty((len(starts), window_frames, 3), dtype=np.float32)
    for i, start in enumerate(starts):
        chunk = rgb[start : start + window_frames]
        windows[i] = chunk / chunk.mean(axis=0) - 1.0
    return windows, starts


def concat_windows(parts: list[SpO2Windows]) -> SpO2Windows:
    """All windows of several clips in one set."""
    return SpO2Windows(
        np.concatenate([p.features for p in parts]),
        np.concatenate([p.targets for p in parts]),
        np.concatenate([p.clip_names for p in parts]),
    )


def synthetic_bvp_weights(spo2_percent: float, a: float = 110.0, b: float = 25.0) -> tuple[float, float, float]:
    """BGR pulse weights for a synthetic clip of this SpO2 (assumed law ``red/blue = (a - spo2) / b``).

    Blue and green keep ``smartmirror.synth``'s weights; only red's amplitude changes. Pass the result as
    ``SynthConfig(extra={"bvp_weights_bgr": ...})``. Synthetic only: real skin does not follow this law.
    """
    blue, green, _ = BVP_WEIGHTS_BGR
    return float(blue), float(green), float(blue * (a - spo2_percent) / b)


@dataclass
class SpO2TrainingResult:
    """What ``smartmirror train spo2`` reports: the model file, the loss history and the held-out error."""

    model_path: Path
    history: list[dict]
    train_clips: list[str]
    heldout_clips: list[str]
    heldout_windows: int
    heldout_mae_percent: float
    heldout_rmse_percent: float
    baseline_mae_percent: float  # always predicting the training mean, for comparison

    def summary(self) -> dict:
        return {
            "model": str(self.model_path),
            "train_clips": self.train_clips,
            "heldout_clips": self.heldout_clips,
            "heldout_windows": self.heldout_windows,
            "heldout_mae_percent": round(self.heldout_mae_percent, 3),
            "heldout_rmse_percent": round(self.heldout_rmse_percent, 3),
            "baseline_mae_percent": round(self.baseline_mae_percent, 3),
            "history": self.history,
        }


def clip_windows(
    clip: SpO2Clip, window_frames: int = MAX_T, hop_frames: int = 50, cache_dir: Path | None = None
) -> SpO2Windows:
    """Track one clip and cut its skin colour trace into windows with reference targets.

    With ``cache_dir`` the windows are kept there per video (size, mtime) and window settings, so a second run
    skips the tracking.

    Raises
    ------
    VideoError
        The video cannot be read or shows no face.
    """
    stat = clip.video.stat()
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{clip.name}-{stat.st_size}-{stat.st_mtime_ns}-{window_frames}-{hop_frames}.npz"
    if path is not None and path.is_file():
        data = np.load(path)
        features, spans = data["features"], [tuple(span) for span in data["spans"]]
    else:
        trace = video_trace(clip.video)
        chunks, spans = [], []
        for segment in build_segments(trace, min_seconds=window_frames / GRID_RATE_HZ):
            windows, starts = relative_windows(segment.rgb, window_frames, hop_frames)
            chunks.append(windows)
            spans += [(segment.grid_s[s], segment.grid_s[s + window_frames - 1]) for s in starts]
        features = np.concatenate(chunks) if chunks else np.zeros((0, window_frames, 3), np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, features=features, spans=np.asarray(spans, np.float64).reshape(-1, 2))
    targets = np.array([clip.target(start, stop) for start, stop in spans], np.float32)
    return SpO2Windows(features, targets, np.array([clip.name] * len(targets)))


def train_from_folder(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    window_frames: int = MAX_T,
    hop_frames: int = 50,
    heldout_fraction: float = 0.2,
    epochs: int = 200,
    patience: int = 40,
    batch_size: int = 32,
    lr: float = 3e-4,
    seed: int = 0,
    log=None,
) -> SpO2TrainingResult:
    """Train the SpO2 Tiny Transformer on a clip folder; hold whole clips out and report their error.

    The held-out clips (``heldout_fraction`` of them, at least one) never reach training; the trainer's own
    early stopping uses a split of the training clips' windows. Writes ``out_dir/spo2_model.pt`` (load it with
    ``TrainedSpO2Model.load``) and ``out_dir/spo2_training.json``; window caches go to ``out_dir/cache/``.

    Raises
    ------
    SpO2DataError
        Bad layout or references, fewer than 3 clips, or too few windows to train on.
    VideoError
        A video cannot be read or shows no face.
    """
    say = log or (lambda message: None)
    clips = find_spo2_clips(data_dir)
    if len(clips) < 3:
        raise SpO2DataError(f"need at least 3 clips (2 to train, 1 held out), found {len(clips)} in {data_dir}")
    out = Path(out_dir)
    parts = []
    for i, clip in enumerate(clips, start=1):
        say(f"[{i}/{len(clips)}] tracking {clip.video}")
        parts.append(clip_windows(clip, window_frames, hop_frames, cache_dir=out / "cache"))
    order = np.random.default_rng(seed).permutation(len(clips))
    n_heldout = max(1, int(round(heldout_fraction * len(clips))))
    heldout = sorted(clips[i].name for i in order[:n_heldout])
    train = [c.name for c in clips if c.name not in heldout]
    train_set = concat_windows([p for p, c in zip(parts, clips, strict=True) if c.name in train])
    test_set = concat_windows([p for p, c in zip(parts, clips, strict=True) if c.name in heldout])
    if len(train_set.targets) < 10 or len(test_set.targets) == 0:
        raise SpO2DataError(
            f"too few {window_frames}-frame windows with a face: {len(train_set.targets)} to train (need 10), "
            f"{len(test_set.targets)} held out; use longer clips or a smaller --window-frames"
        )
    say(f"training on {len(train_set.targets)} windows of {len(train)} clips; {len(heldout)} clips held out")
    trained = train_spo2_transformer(train_set.features, train_set.targets, epochs=epochs, batch_size=batch_size,
                                     lr=lr, patience=patience, seed=seed)
    trained.trained_on = f"{Path(data_dir).name}: {len(train)} clips, {len(train_set.targets)} windows"
    errors = trained.predict(test_set.features) - test_set.targets
    baseline = float(np.abs(train_set.targets.mean() - test_set.targets).mean())
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "spo2_model.pt"
    trained.save(model_path)
    result = SpO2TrainingResult(
        model_path=model_path, history=trained.history, train_clips=train, heldout_clips=heldout,
        heldout_windows=len(errors), heldout_mae_percent=float(np.abs(errors).mean()),
        heldout_rmse_percent=float(np.sqrt(np.mean(errors**2))), baseline_mae_percent=baseline,
    )
    (out / "spo2_training.json").write_text(json.dumps(result.summary(), indent=2))
    return result
