"""Face-tracker milliseconds per 640x480 frame (video mode, 478 landmarks, regions and head pose included).

Prints the median (and the mean: the flow tracker's cost alternates between FaceMesh frames and flow frames) over
>= 100 frames of a synthetic clip of a real face, for several runs, and the median of those. ``--tracker full`` is
:class:`smartmirror.face.FaceTracker` (FaceMesh on every frame), ``flow`` is
:class:`smartmirror.face_track.FlowFaceTracker`. Run: .venv/bin/python benchmarks/face_tracker.py [--frames 150]
[--runs 5] [--tracker full|flow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

from smartmirror.face import FaceTracker  # noqa: E402
from smartmirror.face_track import FlowFaceTracker  # noqa: E402
from smartmirror.synth import SynthConfig, generate_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tracker", choices=["full", "flow"], default="full")
    args = parser.parse_args()
    packets, _ = generate_frames(SynthConfig(duration_s=args.frames / 30, head_motion_px=2.0, seed=1))
    images = [p.image for p in packets]
    run_medians, run_means = [], []
    for run in range(args.runs):
        with (FaceTracker() if args.tracker == "full" else FlowFaceTracker()) as tracker:
            tracker.process(images[0])  # model load and first detection are not per-frame costs
            times_ms = []
            for image in images:
                start = time.perf_counter()
                face = tracker.process(image)
                face.region_mask("forehead")
                times_ms.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times_ms)
        run_medians.append(median)
        run_means.append(statistics.fmean(times_ms))
        p95 = sorted(times_ms)[int(0.95 * len(times_ms))]
        print(f"run {run + 1}: median {median:.2f} ms/frame, mean {run_means[-1]:.2f}, p95 {p95:.2f} ms over "
              f"{len(times_ms)} frames")
    mean = statistics.median(run_means)
    print(f"{args.tracker} tracker 640x480: median of run medians {statistics.median(run_medians):.2f} ms/frame, "
          f"of run means {mean:.2f} ms/frame ({1000 / mean:.0f} frames/s on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
