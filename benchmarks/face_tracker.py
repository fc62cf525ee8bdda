"""FaceMesh milliseconds per 640x480 frame (video mode, 478 landmarks, regions and head pose included).

Prints the median over >= 100 frames of a synthetic clip of a real face, for several runs, and the median of
those medians. Run: .venv/bin/python benchmarks/face_tracker.py [--frames 150] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

from smartmirror.face import FaceTracker  # noqa: E402
from smartmirror.synth import SynthConfig, generate_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    packets, _ = generate_frames(SynthConfig(duration_s=args.frames / 30, head_motion_px=2.0, seed=1))
    images = [p.image for p in packets]
    run_medians = []
    for run in range(args.runs):
        with FaceTracker() as tracker:
            tracker.process(images[0])  # model load and first detection are not per-frame costs
            times_ms = []
            for image in images:
                start = time.perf_counter()
                face = tracker.process(image)
                face.region_mask("forehead")
                times_ms.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times_ms)
        run_medians.append(median)
        p95 = sorted(times_ms)[int(0.95 * len(times_ms))]
        print(f"run {run + 1}: median {median:.2f} ms/frame, p95 {p95:.2f} ms over {len(times_ms)} frames")
    print(f"FaceMesh 640x480: median of run medians {statistics.median(run_medians):.2f} ms/frame "
          f"({1000 / statistics.median(run_medians):.0f} frames/s on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
