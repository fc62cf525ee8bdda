"""FacePhys live (streamed frame by frame) against POS live: per-frame cost and the live heart rate on real clips.

Usage::

    python benchmarks/facephys_live.py [CLIP_OR_DATASET ...] [--seconds 60] [--methods pos,facephys-rlap] [--json]

Default clip: the committed PhysRecorder recording (tests/data/physrecorder_v01_15fps.mkv, oximeter 71.1 bpm).
A dataset folder (UBFC-rPPG layout, :func:`smartmirror.vitals.ground_truth.find_clips`; research-only data stays
outside the repository) adds each of its clips, with the contact PPG as the reference. Per clip the first
``--seconds`` are decoded and FaceMesh-tracked once; each method then gets a fresh live
:class:`~smartmirror.vitals.analyzer.VitalsAnalyzer` fed frame by frame, as the engine's vitals thread does.

Printed per clip and method:
- update ms/frame: CPU time of the process (the analyzer's thread and MediaPipe's own threads that BlazeFace
  runs on; the faces are tracked beforehand) in the analyzer's whole ``update`` (mean over frames; it includes the
  once-a-second heart-rate and five-second slow updates), and for FacePhys the share of its face crop
  (BlazeFace every 5th frame, Kalman box) and of the network steps, per frame and per 30/s model frame;
- the live reading once a second: share of seconds with a value after the first 15 s, and its mean absolute error
  against the reference over the live pool (the mean of the contact PPG's 10 s window rates over the last 30 s);
  the last reading; the live analyzer's clip summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO / "tests" / "data" / "physrecorder_v01_15fps.mkv"


def clips_from(args: list[str]) -> list[tuple[str, Path, object]]:
    """(name, video, reference) per clip: the reference is a constant bpm or a GroundTruth."""
    from smartmirror.vitals.ground_truth import find_clips, read_ground_truth

    out = []
    for arg in args or [str(DEFAULT_CLIP)]:
        path = Path(arg)
        if path.is_dir():
            out += [(clip.name, clip.video, read_ground_truth(clip.truth)) for clip in find_clips(path)]
            continue
        truth = path.with_name(path.name.replace("_15fps.mkv", "_truth.json"))
        if not truth.exists():
            raise SystemExit(f"{path}: no ground truth next to it (expected {truth.name})")
        out.append((path.stem, path, float(json.loads(truth.read_text())["heart_rate_bpm"])))
    return out


def reference_over_pool(reference, t: float) -> float:
    """The reference heart rate the live pool (last 30 s) should show at time ``t``."""
    from smartmirror.vitals.accuracy import reference_heart_rates

    if isinstance(reference, float):
        return reference
    ends = np.arange(max(10.0, t - 20.0), t + 1e-9, 1.0)
    rates = reference_heart_rates(reference, ends)
    rates = rates[np.isfinite(rates)]
    return float(rates.mean()) if len(rates) else float("nan")  # NaN: no usable contact PPG there


def run_method(method: str, packets, faces, reference) -> dict:
    from smartmirror.vitals.analyzer import VitalsAnalyzer

    analyzer = VitalsAnalyzer(method=method)
    parts = {"crop": 0.0, "step": 0.0}

    def timed(name, fn):
        def wrapper(*args):
            started = time.process_time()
            try:
                return fn(*args)
            finally:
                parts[name] += time.process_time() - started
        return wrapper

    if analyzer.cropper_ is not None:
        analyzer.cropper_.update = timed("crop", analyzer.cropper_.update)
    if analyzer.stream_ is not None:
        analyzer.stream_.push = timed("step", analyzer.stream_.push)
    costs, readings, errors, next_t = [], [], [], 1.0
    t0 = packets[0].t
    for packet, face in zip(packets, faces, strict=True):
        started = time.process_time()
        state = analyzer.update(packet, face)
        costs.append(time.process_time() - started)
        t = packet.t - t0
        if t >= next_t:
            next_t += 1.0
            if t >= 15.0:
                readings.append(state.heart_rate_bpm)
                expected = reference_over_pool(reference, packet.t)
                if state.heart_rate_bpm is not None and np.isfinite(expected):
                    errors.append(abs(state.heart_rate_bpm - expected))
    n = len(packets)
    seconds = packets[-1].t - t0
    model_frames = 30.0 * seconds
    summary = analyzer.summary() or {}
    return {
        "update_ms_per_frame": 1000 * float(np.mean(costs)),
        "update_p50_ms": 1000 * float(np.median(costs)),
        "crop_ms_per_frame": 1000 * parts["crop"] / n if analyzer.cropper_ is not None else None,
        "step_ms_per_frame": 1000 * parts["step"] / n if analyzer.stream_ is not None else None,
        "step_ms_per_model_frame": 1000 * parts["step"] / model_frames if analyzer.stream_ is not None else None,
        "shown_share": sum(r is not None for r in readings) / max(len(readings), 1),
        "live_mae_bpm": float(np.mean(errors)) if errors else None,
        "last_bpm": readings[-1] if readings else None,
        "reference_last_bpm": reference_over_pool(reference, packets[-1].t),
        "summary_bpm": summary.get("heart_rate_bpm"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help="video files with a *_truth.json, or dataset folders")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each clip (from its start)")
    parser.add_argument("--methods", default="pos,facephys-rlap")
    parser.add_argument("--subjects", default="", help="comma-separated clip names to keep (dataset folders)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from smartmirror.face import FaceTracker
    from smartmirror.frames import read_video_packets

    keep = {s.strip() for s in args.subjects.split(",") if s.strip()}
    results = []
    for name, video, reference in clips_from(args.clips):
        if keep and name not in keep:
            continue
        packets = list(read_video_packets(video, max_seconds=args.seconds))
        started = time.process_time()
        with FaceTracker() as tracker:
            faces = [tracker.process(p.image) for p in packets]
        tracking_ms = 1000 * (time.process_time() - started) / len(packets)
        fps = (len(packets) - 1) / (packets[-1].t - packets[0].t)
        for method in (m.strip() for m in args.methods.split(",") if m.strip()):
            row = {"clip": name, "method": method, "frames": len(packets), "fps": round(fps, 2),
                   "tracking_ms_per_frame": tracking_ms, **run_method(method, packets, faces, reference)}
            results.append(row)
            if not args.json:
                extra = ""
                if row["step_ms_per_frame"] is not None:
                    extra = (f" (crop {row['crop_ms_per_frame']:.2f}, network {row['step_ms_per_frame']:.2f} ="
                             f" {row['step_ms_per_model_frame']:.2f} per model frame)")
                mae = "-" if row["live_mae_bpm"] is None else f"{row['live_mae_bpm']:.2f}"
                print(f"{name} {fps:.1f} fps {method}: update {row['update_ms_per_frame']:.2f} ms/frame{extra};"
                      f" live shown {100 * row['shown_share']:.0f} %, MAE {mae} bpm, last {row['last_bpm']}"
                      f" (reference {row['reference_last_bpm']:.1f}), summary {row['summary_bpm']}", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for method in sorted({r["method"] for r in results}):
            rows = [r for r in results if r["method"] == method]
            maes = [r["live_mae_bpm"] for r in rows if r["live_mae_bpm"] is not None]
            print(f"{method}: median update {statistics.median(r['update_ms_per_frame'] for r in rows):.2f} ms/frame,"
                  f" live MAE median {statistics.median(maes) if maes else float('nan'):.2f} bpm over {len(maes)}"
                  f" of {len(rows)} clips, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
