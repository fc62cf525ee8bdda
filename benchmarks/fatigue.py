"""Benchmark the fatigue analyzer: microseconds per frame of ``FatigueAnalyzer.update`` alone.

    .venv/bin/python benchmarks/fatigue.py [--repeats 7] [--seconds 60] [--fps 30] [--json]

Face tracking is excluded: FaceMesh runs once on the astronaut portrait, and the frames are landmark edits of
that real observation (blinks, 1.2 s closures, a yawn, speech, a nod; tests/fatigue_sequences.py), built before
the clock starts. Each run feeds a fresh analyzer the whole sequence and times every update; the headline is the
median over runs of the per-run median update time (wall clock); beside it the mean, the 95th percentile and the
thread's CPU time per frame (which, unlike wall time, does not grow when other processes take the cores). The
"mlp" row uses a model fitted here on generated features, for timing only.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fatigue_sequences import Episode, build_sequence  # noqa: E402

from smartmirror.face import FaceTracker  # noqa: E402
from smartmirror.fatigue import FatigueAnalyzer, fatigue_features, save_mlp, train_mlp  # noqa: E402
from smartmirror.synth import default_face_image  # noqa: E402

TIMELINE = [
    *(Episode("closure", 6.0 + 3.0 * i, 0.15) for i in range(8)),
    Episode("closure", 32.0, 1.2),
    Episode("yawn", 38.0, 3.0, amount=0.6),
    Episode("talk", 44.0, 4.0, amount=0.25),
    Episode("nod", 50.0, 0.8, amount=20.0),
]


def per_frame_us(make, frames, repeats: int) -> dict[str, float]:
    """Per run: the median, mean and 95th percentile of single ``update`` wall times and the CPU time per frame;
    each then the median over runs, in microseconds. The per-run median resists preemption by other processes."""
    medians, means, p95s, cpu = [], [], [], []
    single = np.empty(len(frames))
    for _ in range(repeats):
        analyzer = make()
        cpu_start = time.thread_time()
        for i, (packet, face) in enumerate(frames):
            t0 = time.perf_counter()
            analyzer.update(packet, face)
            single[i] = time.perf_counter() - t0
        cpu.append((time.thread_time() - cpu_start) / len(frames))
        medians.append(float(np.median(single)))
        means.append(float(single.mean()))
        p95s.append(float(np.percentile(single, 95)))
    return {
        "us_per_frame_median": round(statistics.median(medians) * 1e6, 1),
        "us_per_frame_mean": round(statistics.median(means) * 1e6, 1),
        "us_p95": round(statistics.median(p95s) * 1e6, 1),
        "cpu_us_per_frame": round(statistics.median(cpu) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with FaceTracker(static_image_mode=True) as tracker:
        base = tracker.process(default_face_image())
    frames = build_sequence(base, TIMELINE, args.seconds, args.fps, seed=0)

    rng = np.random.default_rng(0)
    open_row = fatigue_features(base).mlp_vector()
    shut_row = open_row * [0.3, 1, 1, 1, 1]
    x = np.vstack([open_row + rng.normal(0, 0.02, (200, 5)), shut_row + rng.normal(0, 0.02, (200, 5))])
    model, _ = train_mlp(x, np.r_[np.zeros(200, int), np.ones(200, int)], max_epochs=30)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        mlp_path = save_mlp(model, Path(tmp) / "timing_only.joblib")
        setups = {
            "wellness (rules)": lambda: FatigueAnalyzer(mode="wellness"),
            "driver (rules)": lambda: FatigueAnalyzer(mode="driver"),
            "wellness (mlp)": lambda: FatigueAnalyzer(mode="wellness", mlp_path=mlp_path),
        }
        for name, make in setups.items():
            results[name] = per_frame_us(make, frames, args.repeats)
    feature_medians = []
    faces = [face for _, face in frames if face is not None]
    single = np.empty(len(faces))
    for _ in range(args.repeats):
        for i, face in enumerate(faces):
            t0 = time.perf_counter()
            fatigue_features(face)
            single[i] = time.perf_counter() - t0
        feature_medians.append(float(np.median(single)))
    results["features only"] = {"us_per_frame_median": round(statistics.median(feature_medians) * 1e6, 1)}

    report = {
        "frames": len(frames),
        "seconds": args.seconds,
        "fps": args.fps,
        "repeats": args.repeats,
        "face_tracking": "excluded (FaceMesh ran once before timing)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"FatigueAnalyzer.update, {len(frames)} frames ({args.seconds:.0f} s at {args.fps:g} fps), "
        f"median of {args.repeats} runs; face tracking excluded"
    )
    print(f"  {'':18s} {'median':>8s} {'mean':>8s} {'p95':>8s} {'cpu':>8s}   (us per frame)")
    for name, row in results.items():
        keys = ("us_per_frame_median", "us_per_frame_mean", "us_p95", "cpu_us_per_frame")
        cells = [f"{row[key]:8.1f}" if key in row else f"{'':8s}" for key in keys]
        print(f"  {name:18s} {' '.join(cells)}")


if __name__ == "__main__":
    main()
