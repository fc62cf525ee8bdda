"""How a pulse method's readings depend on the landmarks alone: every frame's FaceMesh, replayed changed.

Usage: ``python benchmarks/landmark_replay.py DATASET_DIR [--method pos] [--variants all] [--cache DIR]
[--exclude subject13] [--only subject9,subject10]``

Per clip FaceMesh runs once on every frame (as the report's tracker does; ``--cache`` keeps the landmarks), then
each variant changes only those landmarks and replays them through the same decode, skin ROI and pulse chain
(:func:`smartmirror.vitals.video.video_traces` with a tracker that hands back the changed landmarks), scored as
``benchmarks/real_eval.py`` scores (window MAE against the contact PPG, whole-clip error, nulls, wrong readings).
It separates what a cheaper tracker changes in the landmarks from everything else it changes (FaceMesh run at a
lower rate sees different crops), and showed that POS on UBFC-rPPG moves with any smoothing of the landmarks
(README, "December 4"; :data:`smartmirror.face_track.VITALS_LANDMARKS_EVERY`).

Variants: ``raw`` (the landmarks as tracked: the reference), ``everyN`` (every N-th frame's landmarks kept and the
frames between interpolated linearly, as ``Pipeline.run(landmarks_every=N)`` does without its safeguards),
``smoothK`` (a K-frame Savitzky-Golay line through every frame's landmarks), ``everyNsmoothK`` (the kept frames
smoothed over K of them, then interpolated).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from real_eval import _cell, score_method, summarise  # noqa: E402

DEFAULT_VARIANTS = ("raw", "every5", "every5smooth5", "every5smooth9", "smooth9", "smooth15")


class ReplayTracker:
    """Hands back one recorded face per ``process`` call, in order (NaN landmarks: no face)."""

    def __init__(self, landmarks: np.ndarray, presence: np.ndarray, num_faces: np.ndarray, size: tuple[int, int]):
        self.landmarks, self.presence, self.num_faces, self.size = landmarks, presence, num_faces, size
        self.index = 0

    def process(self, image_bgr: np.ndarray):
        from smartmirror.face import observation_from_landmarks

        i, self.index = self.index, self.index + 1
        if i >= len(self.landmarks) or not np.isfinite(self.landmarks[i, 0, 0]):
            return None
        return observation_from_landmarks(self.landmarks[i].astype(np.float32), self.size,
                                          presence_score=float(self.presence[i]), num_faces=int(self.num_faces[i]))

    def reset(self) -> None:
        self.index = 0

    def close(self) -> None:
        pass


def record_landmarks(video: Path, cache: Path | None) -> dict[str, np.ndarray]:
    """Every frame's FaceMesh (the report's tracker): landmarks (n, 478, 3) with NaN where no face, presence
    scores, face counts, frame size."""
    from smartmirror.face import FaceTracker
    from smartmirror.vitals.video import video_traces

    path = None if cache is None else cache / f"{video.parent.name}_{video.stem}_landmarks.npz"
    if path is not None and path.exists():
        return dict(np.load(path))
    seen: list = []

    class Recording(FaceTracker):
        def process(self, image_bgr):
            face = super().process(image_bgr)
            seen.append(face)
            return face

    video_traces(video, ["pos"], tracker_factory=lambda: Recording(static_image_mode=False))
    face = next(f for f in seen if f is not None)
    data = {"landmarks": np.stack([np.full((478, 3), np.nan, np.float32) if f is None else f.landmarks_px
                                   for f in seen]),
            "presence": np.array([0.0 if f is None else f.presence_score for f in seen]),
            "num_faces": np.array([0 if f is None else f.num_faces for f in seen]),
            "size": np.array(face.image_size)}
    if path is not None:
        np.savez(path, **data)
    return data


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2], strict=True))


def _smooth(landmarks: np.ndarray, frames: int) -> np.ndarray:
    """A ``frames``-long Savitzky-Golay line through each landmark coordinate, within runs of tracked frames."""
    from scipy.signal import savgol_filter

    out = landmarks.copy()
    for start, stop in _runs(np.isfinite(landmarks[:, 0, 0])):
        if stop - start >= frames:
            out[start:stop] = savgol_filter(landmarks[start:stop], frames, 1, axis=0)
    return out


def changed(landmarks: np.ndarray, variant: str) -> np.ndarray:
    """The landmarks (n, 478, 3) as ``variant`` changes them (see the module docstring)."""
    match = re.fullmatch(r"raw|smooth(\d+)|every(\d+)(?:smooth(\d+))?", variant)
    if match is None:
        raise ValueError(f"unknown variant {variant!r}")
    smooth_only, every, smooth_kept = match.groups()
    if variant == "raw":
        return landmarks
    if smooth_only:
        return _smooth(landmarks, int(smooth_only))
    step = int(every)
    kept_at = np.arange(0, len(landmarks), step)
    kept = landmarks[kept_at]
    if smooth_kept:
        kept = _smooth(kept, int(smooth_kept))
    out = landmarks.copy()
    out[kept_at] = kept
    for j in range(len(kept_at) - 1):
        first, last = kept[j], kept[j + 1]
        if np.isfinite(first[0, 0]) and np.isfinite(last[0, 0]):
            weights = (np.arange(1, step) / step)[:, None, None]
            out[kept_at[j] + 1:kept_at[j + 1]] = first + weights * (last - first)
    return out


def main() -> None:
    from smartmirror.vitals.ground_truth import DatasetError, find_clips, read_ground_truth
    from smartmirror.vitals.methods import get_method
    from smartmirror.vitals.video import video_traces

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--method", default="pos", help="an unsupervised pulse method (default pos)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated (docstring)")
    parser.add_argument("--cache", type=Path, default=None, help="folder for the recorded landmarks (outside the repo)")
    parser.add_argument("--exclude", default="", help="comma-separated clip names to leave out")
    parser.add_argument("--only", default="", help="comma-separated clip names to keep (default: all)")
    parser.add_argument("--wrong-bpm", type=float, default=5.0, help="a whole-clip reading off by more is wrong")
    args = parser.parse_args()
    method = get_method(args.method).name
    if get_method(method).kind != "trace":
        parser.error(f"{method} reads face crops, not the landmarks' skin regions")
    variants = [v for v in args.variants.split(",") if v]
    for variant in variants:
        changed(np.zeros((2, 478, 3)), variant)  # an unknown variant fails before any clip is tracked
    excluded = {n for n in args.exclude.split(",") if n}
    kept = {n for n in args.only.split(",") if n}
    try:
        clips = [c for c in find_clips(args.dataset) if c.name not in excluded and (not kept or c.name in kept)]
    except DatasetError as exc:
        sys.exit(f"landmark_replay: {exc.message}")
    rows: dict[str, list[dict]] = {v: [] for v in variants}
    for clip in clips:
        truth = read_ground_truth(clip.truth)
        recorded = record_landmarks(clip.video, args.cache)
        size = tuple(int(v) for v in recorded["size"])
        for variant in variants:
            landmarks = changed(recorded["landmarks"].astype(np.float64), variant)
            replay = functools.partial(ReplayTracker, landmarks, recorded["presence"], recorded["num_faces"], size)
            trace = video_traces(clip.video, [method], tracker_factory=replay)[method]
            rows[variant].append({"name": clip.name, **score_method(trace, truth, method)})
        print(f"{clip.name}: " + ", ".join(f"{v} {_cell(rows[v][-1]['clip_bpm'])}" for v in variants)
              + f" (contact {_cell(rows[variants[0]][-1]['clip_true_bpm'])})", file=sys.stderr, flush=True)
    print(f"{method}: window heart-rate MAE (bpm) per clip, [whole-clip reading - contact mean], '?' = null")
    print(f"{'clip':<12}" + "".join(f"{v:>22}" for v in variants))
    for i, clip in enumerate(rows[variants[0]]):
        cells = []
        for v in variants:
            r = rows[v][i]
            error = "?" if r["clip_bpm"] is None else f"{r['clip_bpm'] - r['clip_true_bpm']:+.1f}"
            cells.append(f"{_cell(r['window_mae_bpm']):>13} [{error:>6}]")
        print(f"{clip['name']:<12}" + "".join(cells))
    print()
    print(f"{'variant':<16}{'window MAE':>11}{'coverage':>10}{'clip err':>10}{'nulls':>7}{'wrong':>7}")
    for v in variants:
        s = summarise(rows[v], args.wrong_bpm)
        print(f"{v:<16}{_cell(s['window_mae_bpm'], 2):>11}{_cell(s['coverage'], 2):>10}"
              f"{_cell(s['clip_error_bpm'], 2):>10}{s['nulls']:>7}{s['wrong']:>7}")


if __name__ == "__main__":
    main()
