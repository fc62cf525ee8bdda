"""Heart-rate accuracy on real recordings with contact-PPG ground truth, every pulse method, one decode per clip.

Usage: ``python benchmarks/real_eval.py DATASET_DIR [--methods all] [--cache DIR] [--exclude subject13]
[--tracker mesh|plain-mesh|flow] [--mesh-every 5] [--json]``

DATASET_DIR is a UBFC-rPPG-style folder (``<subject>/vid.avi|mp4`` + ``ground_truth.txt`` or ``gtdump.xmp``) or the
flat ``name.avi`` + ``name.txt`` layout (see :func:`smartmirror.vitals.ground_truth.find_clips`); research-only
datasets stay outside the repository (tests/data/README.md lists the public copies used).

Per clip the video is decoded and FaceMesh-tracked **once** (:class:`smartmirror.vitals.analyzer.VitalsAnalyzer`
collecting the skin-ROI colours and, when a learned method is asked for, the face crops); every method then runs
:func:`smartmirror.vitals.pipeline.analyze_trace` on that one trace. ``--cache`` keeps the traces (keyed by the
video and the source of the ROI code) so a second run only re-does the signal processing. ``--tracker flow``
tracks with :class:`smartmirror.face_track.FlowFaceTracker` instead (FaceMesh every ``--mesh-every``-th frame,
optical flow between): how :data:`smartmirror.face_track.FLOW_METHODS` and the learned methods' mesh interval
(:data:`smartmirror.face_track.FLOW_MESH_EVERY`) were chosen.

Printed per method: per-subject and mean window HR MAE (10 s windows, 1 s step, against the contact PPG's spectral
peak, :func:`smartmirror.vitals.accuracy.reference_heart_rates`), the share of windows with a reading above
the confidence gate, and the whole-clip heart rate (the report's ``heart_rate_bpm``) against the clip's mean
reference rate: its error, how many clips got ``null`` and how many a *wrong* reading (off by more than
``--wrong-bpm``, default 5).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Source files whose code shapes the trace (a cached trace is stale when one changes).
TRACE_SOURCES = ("smartmirror/vitals/signal.py", "smartmirror/vitals/analyzer.py", "smartmirror/face.py",
                 "smartmirror/face_track.py",
                 "smartmirror/vitals/neural.py", "smartmirror/pipeline.py", "smartmirror/live/tracked.py")


def _trace_key(video: Path, with_crops: bool, landmarks_every: int = 1, tracker: str = "mesh",
               mesh_every: int = 5) -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"{video.resolve()}|{video.stat().st_size}|{video.stat().st_mtime_ns}|{with_crops}"
                            f"{'' if landmarks_every == 1 else f'|every {landmarks_every}'}"
                            f"{'' if tracker == 'mesh' else f'|{tracker}'}"
                            f"{'' if tracker == 'mesh' or mesh_every == 5 else f'|mesh every {mesh_every}'}".encode())
    for source in TRACE_SOURCES:
        digest.update((root / source).read_bytes())
    return digest.hexdigest()[:16]


def clip_trace(video: Path, *, crop_method: str | None, cache: Path | None, landmarks_every: int = 1,
               tracker: str = "mesh", mesh_every: int = 5):
    """The clip's :class:`VitalsTrace` (decoded and tracked once; from ``cache`` when it holds this version);
    ``tracker``: "mesh" (FaceMesh on every frame), "plain-mesh" (the same without the refined eyes, lips and irises:
    ``FaceTracker(refine_landmarks=False)``; measured, not used by the report) or "flow"
    (:class:`smartmirror.face_track.FlowFaceTracker`, FaceMesh every ``mesh_every``-th frame)."""
    from smartmirror.face import FaceTracker
    from smartmirror.face_track import FlowFaceTracker
    from smartmirror.vitals.pipeline import VitalsTrace
    from smartmirror.vitals.rppg import DEFAULT_METHOD
    from smartmirror.vitals.video import video_traces

    path = None
    if cache is not None:
        key = _trace_key(video, crop_method is not None, landmarks_every, tracker, mesh_every)
        path = cache / f"{video.parent.name}_{video.stem}_{key}.npz"
        if path.exists():
            data = np.load(path)
            crops = list(data["crops"]) if "crops" in data else None
            if crops is not None:
                crops = [c if data["has_crop"][i] else None for i, c in enumerate(crops)]
            if "background_rgb" in data:  # a trace cached before the scene reference is measured again
                return VitalsTrace(data["times_s"], data["rgb"], data["presence"], data["skin_fraction"],
                                   data["face_y"], crops, data["background_rgb"])
    factories = {"flow": lambda: FlowFaceTracker(mesh_every=mesh_every),
                 "plain-mesh": lambda: FaceTracker(refine_landmarks=False)}
    trace = video_traces(video, [crop_method or DEFAULT_METHOD], landmarks_every=landmarks_every,
                         tracker_factory=factories.get(tracker))[crop_method or DEFAULT_METHOD]
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(trace, k) for k in ("times_s", "rgb", "presence", "skin_fraction", "face_y",
                                                   "background_rgb")}
        if trace.crops is not None:
            shape = next((c.shape for c in trace.crops if c is not None), (36, 36, 3))
            arrays["has_crop"] = np.array([c is not None for c in trace.crops])
            arrays["crops"] = np.stack([c if c is not None else np.zeros(shape, np.uint8) for c in trace.crops])
        np.savez_compressed(path, **arrays)
    return trace


def clip_reference_bpm(truth, t_end_s: float) -> float | None:
    """The clip's mean contact heart rate: the mean of the reference windows ending every second up to ``t_end_s``."""
    from smartmirror.vitals import heart
    from smartmirror.vitals.accuracy import reference_heart_rates

    ends = np.arange(truth.times_s[0] + heart.WINDOW_S, min(t_end_s, truth.times_s[-1]) + 1e-9, 1.0)
    rates = reference_heart_rates(truth, ends) if len(ends) else np.zeros(0)
    return float(np.nanmean(rates)) if np.isfinite(rates).any() else None


def score_method(trace, truth, method: str) -> dict:
    """Window MAE, coverage and the whole-clip reading of one method on one trace."""
    from smartmirror.vitals.accuracy import reference_heart_rates
    from smartmirror.vitals.pipeline import analyze_trace

    started = time.perf_counter()
    result = analyze_trace(trace, method=method)
    seconds = time.perf_counter() - started
    readings = [r for r in result.readings if r.tracked_bpm is not None]
    ends = np.array([r.t_s for r in readings])
    predicted = np.array([r.tracked_bpm for r in readings])
    reference = reference_heart_rates(truth, ends) if len(ends) else np.zeros(0)
    both = np.isfinite(reference)
    clip_ref = clip_reference_bpm(truth, float(trace.times_s[-1]))
    answer = result.heart_rate.heart_rate_bpm
    return {
        "window_mae_bpm": round(float(np.mean(np.abs(predicted[both] - reference[both]))), 3) if both.any() else None,
        "coverage": round(float(np.mean([r.heart_rate_bpm is not None for r in readings])), 3) if readings else 0.0,
        "clip_true_bpm": None if clip_ref is None else round(clip_ref, 2),
        "clip_bpm": answer,
        "clip_tracked_bpm": None if result.heart_rate.tracked_bpm is None else round(result.heart_rate.tracked_bpm, 2),
        "clip_error_bpm": None if answer is None or clip_ref is None else round(abs(answer - clip_ref), 2),
        "tracked_error_bpm": None if result.heart_rate.tracked_bpm is None or clip_ref is None
        else round(abs(result.heart_rate.tracked_bpm - clip_ref), 2),
        "confidence": result.heart_rate.confidence,
        "analyze_s": round(seconds, 2),
    }


def summarise(rows: list[dict], wrong_bpm: float) -> dict:
    """Means over clips: window MAE, coverage, whole-clip error of the answered clips, nulls, wrong readings."""
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(values)), 3) if values else None

    answered = [r for r in rows if r["clip_bpm"] is not None]
    return {
        "clips": len(rows),
        "window_mae_bpm": mean("window_mae_bpm"),
        "coverage": mean("coverage"),
        "clip_error_bpm": mean("clip_error_bpm"),
        "clip_error_median_bpm": round(float(np.median([r["clip_error_bpm"] for r in answered])), 3)
        if answered else None,
        "tracked_error_bpm": mean("tracked_error_bpm"),
        "nulls": len(rows) - len(answered),
        "wrong": sum(r["clip_error_bpm"] is not None and r["clip_error_bpm"] > wrong_bpm for r in answered),
    }


def _cell(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    from smartmirror.frames import VideoError
    from smartmirror.vitals.ground_truth import DatasetError, find_clips, read_ground_truth
    from smartmirror.vitals.methods import get_method, list_methods
    from smartmirror.vitals.rppg import DEFAULT_METHOD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--methods", default="all", help="comma-separated names, or 'all' (default)")
    parser.add_argument("--cache", type=Path, default=None, help="folder for decoded traces (outside the repo)")
    parser.add_argument("--exclude", default="", help="comma-separated clip names to leave out")
    parser.add_argument("--wrong-bpm", type=float, default=5.0, help="a whole-clip reading off by more is wrong")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", default="", help="comma-separated clip names to keep (default: all)")
    parser.add_argument("--landmarks-every", type=int, default=1,
                        help="FaceMesh on every this many frames, landmarks interpolated between (default 1)")
    parser.add_argument("--tracker", choices=("mesh", "plain-mesh", "flow"), default="mesh",
                        help="FaceMesh on every frame (default), its plain mesh (no refined eyes, lips or irises) "
                             "on every frame, or the flow tracker (FaceMesh every 5th frame)")
    parser.add_argument("--mesh-every", type=int, default=5,
                        help="with --tracker flow: frames from one FaceMesh pass to the next (default 5)")
    args = parser.parse_args()
    if args.mesh_every < 1:
        parser.error("--mesh-every must be at least 1")

    methods = list_methods() if args.methods == "all" else [get_method(m).name for m in args.methods.split(",")]
    crop_method = next((m for m in methods if get_method(m).kind == "frames"), None)
    excluded = {name for name in args.exclude.split(",") if name}
    try:
        kept = {name for name in args.only.split(",") if name}
        clips = [c for c in find_clips(args.dataset) if c.name not in excluded and (not kept or c.name in kept)]
    except DatasetError as exc:
        sys.exit(f"real_eval: {exc.message}")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    notes: dict[str, list[str]] = {}
    for clip in clips:
        started = time.perf_counter()
        try:
            truth = read_ground_truth(clip.truth)
            trace = clip_trace(clip.video, crop_method=crop_method, cache=args.cache,
                               landmarks_every=args.landmarks_every, tracker=args.tracker,
                               mesh_every=args.mesh_every)
        except (DatasetError, VideoError) as exc:
            print(f"{clip.name}: skipped ({exc.code}: {exc.message})", file=sys.stderr)
            continue
        notes[clip.name] = list(clip.notes) + list(truth.notes)
        decode_s = time.perf_counter() - started
        for method in methods:
            row = {"name": clip.name, **score_method(trace, truth, method)}
            results[method].append(row)
        print(f"{clip.name}: {trace.frames} frames, trace {decode_s:.1f} s, "
              + ", ".join(f"{m} {_cell(results[m][-1]['clip_bpm'])}" for m in methods)
              + f" (contact {_cell(results[methods[0]][-1]['clip_true_bpm'])})", file=sys.stderr, flush=True)
    summary = {m: summarise(rows, args.wrong_bpm) for m, rows in results.items() if rows}
    if args.json:
        print(json.dumps({"default_method": DEFAULT_METHOD, "methods": methods, "results": results,
                          "summary": summary, "notes": notes}, indent=2))
        return
    names = [r["name"] for r in results[methods[0]]]
    print("Window heart-rate MAE (bpm) per subject; [whole-clip reading - contact mean] in brackets, '?' = null")
    print(f"{'subject':<12}{'contact':>8}" + "".join(f"{m:>22}" for m in methods))
    for i, name in enumerate(names):
        cells = []
        for m in methods:
            r = results[m][i]
            clip = "?" if r["clip_bpm"] is None else f"{r['clip_bpm'] - r['clip_true_bpm']:+.1f}"
            cells.append(f"{_cell(r['window_mae_bpm']):>12} [{clip:>6}] ")
        flag = " *" if notes.get(name) else ""
        print(f"{name:<12}{_cell(results[methods[0]][i]['clip_true_bpm']):>8}" + "".join(cells) + flag)
    print()
    print(f"{'method':<16}{'window MAE':>11}{'coverage':>10}{'clip err':>10}{'median':>8}{'nulls':>7}{'wrong':>7}")
    for m in methods:
        s = summary[m]
        print(f"{m + (' (default)' if m == DEFAULT_METHOD else ''):<16}{_cell(s['window_mae_bpm'], 2):>11}"
              f"{_cell(s['coverage'], 2):>10}{_cell(s['clip_error_bpm'], 2):>10}"
              f"{_cell(s['clip_error_median_bpm'], 2):>8}"
              f"{s['nulls']:>7}{s['wrong']:>7}")
    print(f"({len(names)} clips; wrong = whole-clip reading off by > {args.wrong_bpm:g} bpm; clip err = mean over "
          "answered clips)")
    for name, lines in notes.items():
        for line in lines:
            print(f"* {name}: {line}")


if __name__ == "__main__":
    main()
