"""Emotion milliseconds per face: eye-levelled crop from landmarks + the bundled emotion ensemble + smoothing.

Times three stages on the astronaut portrait's FaceMesh observation (tracking itself is benchmarked in
face_tracker.py): the crop, ``predict_face`` on a ready crop (preprocess + network), and the whole
``EmotionAnalyzer.update`` per frame. Prints the median over ``--repeats`` calls for several runs and the median
of the run medians (target: <= 5 ms per face on 2 cores). Inference runs single-threaded, so the calling
thread's CPU time (``time.thread_time``) is also printed: on a machine shared with other work the wall time
includes waiting for a core, the CPU time is what a free core would take.
Run: .venv/bin/python benchmarks/emotion.py [--repeats 200] [--runs 5] [--model mini_xception_fer2013]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

from smartmirror.emotion import EmotionAnalyzer, predict_face  # noqa: E402
from smartmirror.emotion.analyzer import shared_predictor  # noqa: E402
from smartmirror.emotion.spec import resolve_model_spec  # noqa: E402
from smartmirror.face import FaceTracker  # noqa: E402
from smartmirror.frames import FramePacket  # noqa: E402
from smartmirror.synth import default_face_image  # noqa: E402


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median thread-CPU milliseconds per call."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="registered name or checkpoint (default: the bundled default)")
    args = parser.parse_args()
    image = default_face_image()
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(image)
    predictor = shared_predictor(resolve_model_spec(args.model))
    crop = predictor.crop(image, face)
    predict_face(crop, model=args.model)  # model load is not a per-face cost
    analyzer = EmotionAnalyzer(model=args.model)
    frame_index = [0]

    def analyzer_update() -> None:
        frame_index[0] += 1
        analyzer.update(FramePacket(frame_index[0] / 30, image, frame_index[0]), face)

    stages = {
        "crop": lambda: predictor.crop(image, face),
        "predict_face(crop)": lambda: predict_face(crop, model=args.model),
        "EmotionAnalyzer.update": analyzer_update,
    }
    wall: dict[str, list[float]] = {name: [] for name in stages}
    cpu: dict[str, list[float]] = {name: [] for name in stages}
    for run in range(args.runs):
        line = []
        for name, fn in stages.items():
            fn()
            wall_ms, cpu_ms = _median_ms(fn, args.repeats)
            wall[name].append(wall_ms)
            cpu[name].append(cpu_ms)
            line.append(f"{name} {wall_ms:.2f} ms (cpu {cpu_ms:.2f})")
        print(f"run {run + 1}: " + ", ".join(line))
    summary = ", ".join(
        f"{name} {statistics.median(wall[name]):.2f} ms (cpu {statistics.median(cpu[name]):.2f})" for name in stages
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of run medians ({os.cpu_count()} cores, load {load:.1f}, model {predictor.model}): {summary}")
    per_face = statistics.median(wall["EmotionAnalyzer.update"])
    per_face_cpu = statistics.median(cpu["EmotionAnalyzer.update"])
    print(f"emotion per face: {per_face:.2f} ms wall, {per_face_cpu:.2f} ms cpu (target <= 5 ms)")


if __name__ == "__main__":
    main()
