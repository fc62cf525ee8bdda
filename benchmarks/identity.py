"""Benchmark age and gender per face: alignment (two chips) + both networks, on the astronaut portrait.

    .venv/bin/python benchmarks/identity.py [--repeats 7] [--calls 50] [--json]

Each figure is the median over ``repeats`` runs of the per-call median, in milliseconds per face, for a 640x480
frame (the portrait fitted to a webcam frame). The FaceMesh pass that finds the points is shared with every
other analyzer and is not counted; the loading of the networks (once per process) is reported separately.
onnxruntime runs on one thread, as the manifest asks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2
import numpy as np

from smartmirror.face import FaceTracker
from smartmirror.frames import FramePacket
from smartmirror.identity import AgeGenderModel, IdentityAnalyzer, dlib5_points, extract_chip
from smartmirror.synth import default_face_image


def median_ms(function, calls: int) -> float:
    """Median milliseconds of ``calls`` calls of ``function()`` (after one warm-up call)."""
    function()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        function()
        times[i] = time.perf_counter() - start
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    portrait = default_face_image()
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 64:576] = cv2.resize(portrait, (512, 480), interpolation=cv2.INTER_AREA)
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(frame)
    if face is None:
        raise SystemExit("FaceMesh found no face in the benchmark frame")
    points = dlib5_points(face)

    start = time.perf_counter()
    model = AgeGenderModel()
    load_ms = (time.perf_counter() - start) * 1e3

    def chips() -> None:
        extract_chip(frame, points, 64)
        extract_chip(frame, points, 32)

    runs: dict[str, list[float]] = {"align_ms": [], "networks_ms": [], "per_face_ms": [], "analyzer_update_ms": []}
    age_chip = np.ascontiguousarray(extract_chip(frame, points, 64)[None, ..., ::-1])
    gender_chip = np.ascontiguousarray(extract_chip(frame, points, 32)[None, ..., ::-1])
    analyzer = IdentityAnalyzer(model=model, sample_interval_s=0.0)
    clock = iter(range(10**9))
    for _ in range(args.repeats):
        runs["align_ms"].append(median_ms(chips, args.calls))
        runs["networks_ms"].append(median_ms(lambda: model.predict_chips(age_chip, gender_chip), args.calls))
        runs["per_face_ms"].append(median_ms(lambda: model.predict(frame, points), args.calls))
        runs["analyzer_update_ms"].append(
            median_ms(lambda: analyzer.update(FramePacket(float(next(clock)), frame), face), args.calls)
        )
    result = {
        **{name: round(statistics.median(values), 3) for name, values in runs.items()},
        "model_load_ms": round(load_ms, 1),
        "repeats": args.repeats,
        "calls": args.calls,
        "eye_span_px": round(float(np.linalg.norm(points[0] - points[2])), 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"age + gender per face: {result['per_face_ms']:.2f} ms (median of {args.repeats} runs x {args.calls})")
    print(f"  alignment (64 + 32 px chips): {result['align_ms']:.2f} ms")
    print(f"  networks (age + gender):      {result['networks_ms']:.2f} ms")
    print(f"  IdentityAnalyzer.update:      {result['analyzer_update_ms']:.2f} ms (a reading every frame)")
    print(f"model load (once per process):  {result['model_load_ms']:.0f} ms; face {result['eye_span_px']} px wide "
          f"at the eye corners; {result['machine']}")


if __name__ == "__main__":
    main()
