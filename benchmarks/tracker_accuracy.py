"""The flow tracker against FaceMesh on every frame: tracking CPU, ROI agreement and heart-rate error per clip.

Usage: ``python benchmarks/tracker_accuracy.py DATASET_DIR [--mesh-every 5] [--mesh-weight 1.0] [--methods pos,ica]
[--only a,b]
[--max-frames N] [--json]``

DATASET_DIR is a UBFC-rPPG-style folder (or flat layout, :func:`smartmirror.dataset.find_clips`): real subjects
(research-only data, outside the repository) or clips made by ``smartmirror synth OUT --subjects N``. Each clip is
decoded once; every frame goes to both trackers (:class:`smartmirror.face.FaceTracker`, the reference, and
:class:`smartmirror.face_track.FlowFaceTracker`), each feeding its own vitals trace. Printed per clip: tracker CPU
ms/frame (process time, MediaPipe's own threads included), the mean and 95th-percentile distance between the two
trackers' skin-region landmarks in pixels (and as a share of the inter-ocular distance), the correlation of the two
skin-colour traces after a pulse-band filter, and for each method the window HR MAE and whole-clip error against
the contact PPG (:func:`benchmarks.real_eval.score_method`) with each tracker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_eval import score_method  # noqa: E402


def compare_clip(video: Path, *, mesh_every: int, mesh_weight: float, max_frames: int | None) -> dict:
    """Both trackers over one decode of ``video``: their vitals traces, CPU and landmark distances."""
    from smartmirror.face import REGIONS, SKIN_REGIONS, FaceTracker
    from smartmirror.face_track import FlowFaceTracker
    from smartmirror.frames import read_video_packets
    from smartmirror.vitals.analyzer import VitalsAnalyzer

    skin = sorted({i for name in SKIN_REGIONS for i in REGIONS[name]})
    trackers = {"full": FaceTracker(static_image_mode=False),
                "flow": FlowFaceTracker(mesh_every=mesh_every, mesh_weight=mesh_weight)}
    vitals = {name: VitalsAnalyzer(live=False, max_seconds=1e9) for name in trackers}
    cpu = dict.fromkeys(trackers, 0.0)
    distances, scales, missing = [], [], dict.fromkeys(trackers, 0)
    frames = 0
    for packet in read_video_packets(video, max_frames=max_frames):
        faces = {}
        for name, tracker in trackers.items():
            start = time.process_time()
            faces[name] = tracker.process(packet.image)
            cpu[name] += time.process_time() - start
            missing[name] += faces[name] is None
            vitals[name].update(packet, faces[name])
        if faces["full"] is not None and faces["flow"] is not None:
            gap = faces["full"].landmarks_px[skin, :2] - faces["flow"].landmarks_px[skin, :2]
            distances.append(float(np.linalg.norm(gap, axis=1).mean()))
            scales.append(faces["full"].inter_ocular_px)
        frames += 1
    for tracker in trackers.values():
        tracker.close()
    traces = {name: v.trace() for name, v in vitals.items()}
    distances_px = np.asarray(distances)
    return {
        "frames": frames,
        "traces": traces,
        "cpu_ms_per_frame": {name: round(1000 * s / max(frames, 1), 2) for name, s in cpu.items()},
        "frames_without_face": missing,
        "mesh_passes": trackers["flow"].mesh_passes,
        "landmark_gap_px": round(float(distances_px.mean()), 3) if len(distances_px) else None,
        "landmark_gap_p95_px": round(float(np.percentile(distances_px, 95)), 3) if len(distances_px) else None,
        "landmark_gap_iod": round(float(np.mean(distances_px / np.maximum(scales, 1.0))), 4)
        if len(distances_px) else None,
        "trace_correlation": _trace_correlation(traces["full"], traces["flow"]),
    }


def _trace_correlation(full, flow) -> float | None:
    """Correlation of the two traces' green channel in the pulse band, over frames both saw a face."""
    from smartmirror.vitals.rppg import PULSE_BAND_HZ
    from smartmirror.vitals.signal import bandpass

    both = np.all(np.isfinite(full.rgb), axis=1) & np.all(np.isfinite(flow.rgb), axis=1)
    if both.sum() < 90:
        return None
    rate = (both.sum() - 1) / float(full.times_s[both][-1] - full.times_s[both][0])
    a = bandpass(full.rgb[both, 1], sampling_rate=rate, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    b = bandpass(flow.rgb[both, 1], sampling_rate=rate, low_hz=PULSE_BAND_HZ[0], high_hz=PULSE_BAND_HZ[1])
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def main() -> None:
    from smartmirror.dataset import find_clips, read_ground_truth

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--mesh-every", type=int, default=5)
    parser.add_argument("--mesh-weight", type=float, default=1.0)
    parser.add_argument("--methods", default="pos,ica")
    parser.add_argument("--only", default="", help="comma-separated clip names to run (default all)")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    only = {n for n in args.only.split(",") if n}
    rows = []
    for clip in find_clips(args.dataset):
        if only and clip.name not in only:
            continue
        truth = read_ground_truth(clip.truth)
        result = compare_clip(clip.video, mesh_every=args.mesh_every, mesh_weight=args.mesh_weight,
                              max_frames=args.max_frames)
        traces = result.pop("traces")
        scores = {m: {name: score_method(trace, truth, m) for name, trace in traces.items()} for m in methods}
        row = {"name": clip.name, **result,
               "hr": {m: {name: {k: s[k] for k in ("window_mae_bpm", "clip_error_bpm", "clip_bpm", "clip_true_bpm")}
                          for name, s in by.items()} for m, by in scores.items()}}
        rows.append(row)
        hr = "  ".join(f"{m} MAE full {_fmt(by['full']['window_mae_bpm'])} flow {_fmt(by['flow']['window_mae_bpm'])}"
                       f" (clip err {_fmt(by['full']['clip_error_bpm'])}/{_fmt(by['flow']['clip_error_bpm'])})"
                       for m, by in row["hr"].items())
        print(f"{clip.name}: {row['frames']} frames, cpu ms/frame full {row['cpu_ms_per_frame']['full']} flow "
              f"{row['cpu_ms_per_frame']['flow']} ({row['mesh_passes']} meshes), gap {row['landmark_gap_px']} px "
              f"(p95 {row['landmark_gap_p95_px']}, {row['landmark_gap_iod']} iod), corr {row['trace_correlation']}, "
              f"{hr}", file=sys.stderr, flush=True)
    summary = {}
    for m in methods:
        for name in ("full", "flow"):
            maes = [r["hr"][m][name]["window_mae_bpm"] for r in rows if r["hr"][m][name]["window_mae_bpm"] is not None]
            errs = [r["hr"][m][name]["clip_error_bpm"] for r in rows if r["hr"][m][name]["clip_error_bpm"] is not None]
            summary[f"{m}/{name}"] = {"window_mae_bpm": round(float(np.mean(maes)), 3) if maes else None,
                                      "clip_error_bpm": round(float(np.mean(errs)), 3) if errs else None,
                                      "nulls": sum(r["hr"][m][name]["clip_bpm"] is None for r in rows)}
    for name in ("full", "flow"):
        cpu_ms = [r["cpu_ms_per_frame"][name] for r in rows]
        summary[f"cpu_ms_per_frame/{name}"] = round(float(np.median(cpu_ms)), 2) if cpu_ms else None
    if args.json:
        print(json.dumps({"mesh_every": args.mesh_every, "mesh_weight": args.mesh_weight, "rows": rows,
                          "summary": summary}, indent=2))
    else:
        print(f"mesh every {args.mesh_every} frames, {len(rows)} clips")
        for key, value in summary.items():
            print(f"{key:<24} {value}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
