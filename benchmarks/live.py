"""Benchmark the live path with every analyzer on: frames/s delivered by the mirror and the callback's latency.

    .venv/bin/python benchmarks/live.py [--seconds 30] [--warmup 12] [--repeats 3] [--cores 2] [--json]
        [--pulse-method facephys-rlap] [--clip VIDEO [--truth-bpm 71.1]]

A 640x480, 30 frames/s synthetic pulse clip of the astronaut (72 bpm, made in memory first, not timed) is played
in real time through the app's own queued video callback (``MirrorSession.queued_video_frames_callback``) the
way streamlit-webrtc runs it with ``async_processing=True``: a camera thread queues a frame every 1/30 s, a
worker thread hands the callback every frame queued since its last run (each reaches the engine, the newest is
drawn and returned). The engine behind it
runs FaceMesh and the vitals, fatigue and emotion analyzers and the agent on their threads, on ``--cores`` CPU
cores (``sched_setaffinity``). WebRTC's own VP8 encode/decode and the browser are not included.
``--pulse-method`` runs the vitals with another live method (e.g. ``facephys-rlap``, streamed frame by frame);
``--clip`` plays the first ``--clip-seconds`` of a real video instead (looped, at its own frame rate).

Printed per run and as the median over runs:
- delivered frames/s: callback outputs per second (target >= 25);
- callback p50 / p95 milliseconds (target p95 <= 5);
- analysed frames/s: frames the face tracker processed (analyzers read every one of them, or at their rate);
  vitals frames/s: frames the vitals read (the tracker's and those it skipped);
- per-analyzer state updates/s, frames the tracker skipped, and the heart rate at the end against the truth.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import platform
import statistics
import sys
import threading
import time

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import av  # noqa: E402
import numpy as np  # noqa: E402

from smartmirror.live.engine import Engine, default_specs  # noqa: E402
from smartmirror.live.process import APP_SWITCH_INTERVAL_S, APP_TORCH_THREADS, tune_process_for_live  # noqa: E402
from smartmirror.synth import SynthConfig, generate_frames  # noqa: E402
from smartmirror.ui.session import MirrorSession  # noqa: E402

TIME_BASE = fractions.Fraction(1, 90000)


def make_frames(seconds: float) -> tuple[list[av.VideoFrame], float]:
    """A seamless-looping 640x480 pulse clip as yuv420p frames (what WebRTC hands the callback), and its HR."""
    config = SynthConfig(duration_s=seconds, width=640, height=480, heart_rate_bpm=72.0, hrv_sd_ms=0.0,
                         respiratory_sinus_arrhythmia_bpm=0.0, respiration_rate_bpm=12.0, pulse_amplitude=0.008)
    packets, truth = generate_frames(config)
    frames = [av.VideoFrame.from_ndarray(p.image, format="bgr24").reformat(format="yuv420p") for p in packets]
    return frames, truth.heart_rate_bpm


def clip_frames(path: str, seconds: float) -> tuple[list[av.VideoFrame], float]:
    """The first ``seconds`` of a real video as yuv420p frames, and its frame rate."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.reformat(format="yuv420p"))
            if len(frames) >= seconds * fps:
                break
    return frames, fps


def run_once(frames: list[av.VideoFrame], *, seconds: float, warmup: float, fps: float = 30.0,
             analyzers: tuple[str, ...] = ("vitals", "fatigue", "emotion"), pulse_method: str | None = None) -> dict:
    """Play ``frames`` (looped) for ``warmup + seconds`` through the callback; measure the last ``seconds``."""
    from smartmirror.agent import InterventionAgent

    session = MirrorSession(engine_factory=lambda mode, keep: Engine(
        [s for s in default_specs(mode, pulse_method=pulse_method) if s.name in analyzers], mode=mode,
        agent_factory=lambda: InterventionAgent(mode, seed=0)))
    engine = session.ensure_engine("wellness", False)
    slot: list[av.VideoFrame] = []  # frames queued since the worker last ran (streamlit-webrtc's in-queue)
    cond = threading.Condition()
    stop = threading.Event()
    delivered: list[float] = []
    offered = [0]

    def camera() -> None:
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i / fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            frame = frames[i % len(frames)]
            frame.pts = int(round(i / fps / TIME_BASE))
            frame.time_base = TIME_BASE
            with cond:
                slot.append(frame)
                offered[0] += 1
                cond.notify()
            i += 1

    def worker() -> None:
        loop = asyncio.new_event_loop()
        while not stop.is_set():
            with cond:
                while not slot and not stop.is_set():
                    cond.wait(0.2)
                batch = slot[:]
                slot.clear()
            if batch:
                loop.run_until_complete(session.queued_video_frames_callback(batch))
                delivered.append(time.monotonic())
        loop.close()

    threads = [threading.Thread(target=camera, daemon=True), threading.Thread(target=worker, daemon=True)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    session.callback_ms.clear()
    measured_from = time.monotonic()
    counts_before = {name: 0 for name in ("vitals", "fatigue", "emotion")}
    versions: dict[str, list[float]] = {name: [] for name in counts_before}
    buffered_before = engine.buffer.sequence
    tracked_before = engine.frames_submitted - engine.frames_dropped
    offered_before = offered[0]
    dropped_before = engine.frames_dropped
    latencies: list[float] = []
    last_seen: dict[str, float] = {}
    while time.monotonic() - measured_from < seconds:
        latencies.extend(session.callback_ms)
        session.callback_ms.clear()
        for name in versions:
            entry = engine.store.get(name)
            if entry is not None and entry.updated_at != last_seen.get(name):
                last_seen[name] = entry.updated_at
                versions[name].append(entry.updated_at)
        time.sleep(0.01)
    latencies.extend(session.callback_ms)
    elapsed = time.monotonic() - measured_from
    stop.set()
    for thread in threads:
        thread.join(2)
    snapshot = engine.store.snapshot()
    vitals = snapshot["vitals"].state if "vitals" in snapshot else None  # a VitalsState
    result = {
        "delivered_fps": sum(1 for t in delivered if t >= measured_from) / elapsed,
        "offered_fps": (offered[0] - offered_before) / elapsed,
        "analysed_fps": (engine.frames_submitted - engine.frames_dropped - tracked_before) / elapsed,
        "vitals_fps": (engine.buffer.sequence - buffered_before) / elapsed,  # skipped frames reach the vitals too
        "tracker_skipped": engine.frames_dropped - dropped_before,
        "callback_p50_ms": float(np.percentile(latencies, 50)),
        "callback_p95_ms": float(np.percentile(latencies, 95)),
        "updates_per_s": {name: len(v) / elapsed for name, v in versions.items()},
        "frames_lost": dict(engine.frames_lost),
        "status": {name: e.status for name, e in snapshot.items()},
        "heart_rate_bpm": getattr(vitals, "heart_rate_bpm", None),
        "pulse_method": getattr(vitals, "method", None),
        "process_cpu_s_per_s": None,
        "analyzers": list(analyzers),
    }
    session.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=12.0, help="seconds before measuring (models load)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="CPU cores to run on (sched_setaffinity)")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="length of the looped clip")
    parser.add_argument("--switch-interval-ms", type=float, default=APP_SWITCH_INTERVAL_S * 1000,
                        help="Python's GIL switch interval, as app.py sets it (Python's default is 5)")
    parser.add_argument("--torch-threads", type=int, default=APP_TORCH_THREADS,
                        help="torch intra-op threads, as app.py sets them (0: leave torch's default)")
    parser.add_argument("--analyzers", default="vitals,fatigue,emotion",
                        help="comma-separated analyzers to run (default all; for finding who costs what)")
    parser.add_argument("--pulse-method", default=None, help="the vitals' live pulse method (default: the app's)")
    parser.add_argument("--clip", default=None, help="a real video to play instead of the synthetic clip")
    parser.add_argument("--truth-bpm", type=float, default=None, help="the clip's reference heart rate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tune_process_for_live(switch_interval_s=args.switch_interval_ms / 1000, torch_threads=args.torch_threads or None)
    available = sorted(os.sched_getaffinity(0))
    cores = available[: args.cores]
    os.sched_setaffinity(0, cores)
    if args.clip:
        (frames, fps), truth_bpm = clip_frames(args.clip, args.clip_seconds), args.truth_bpm
    else:
        (frames, truth_bpm), fps = make_frames(args.clip_seconds), 30.0
    runs = []
    for k in range(args.repeats):
        cpu_before, wall_before = time.process_time(), time.monotonic()
        run = run_once(frames, seconds=args.seconds, warmup=args.warmup, fps=fps, pulse_method=args.pulse_method,
                       analyzers=tuple(a.strip() for a in args.analyzers.split(",") if a.strip()))
        run["process_cpu_s_per_s"] = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        runs.append(run)
        if not args.json:
            print(f"run {k + 1}: delivered {run['delivered_fps']:.1f} fps, callback p50 {run['callback_p50_ms']:.2f} ms"
                  f" p95 {run['callback_p95_ms']:.2f} ms, analysed {run['analysed_fps']:.1f} fps, updates/s "
                  + ", ".join(f"{n} {v:.1f}" for n, v in run["updates_per_s"].items())
                  + f", heart rate {run['heart_rate_bpm']} (truth {truth_bpm}, method {run['pulse_method']})"
                  + f", process CPU {run['process_cpu_s_per_s']:.2f} cores", flush=True)
    summary = {
        "switch_interval_ms": args.switch_interval_ms,
        "torch_threads": args.torch_threads or "default",
        "machine": {"cores_used": len(cores), "cores_available": len(available), "cpu": platform.processor()
                    or platform.machine(), "load_avg_1min": os.getloadavg()[0]},
        "frame": f"{args.clip or 'synthetic 640x480'} @ {fps:g} fps offered",
        "pulse_method": args.pulse_method or "default",
        "median": {
            key: statistics.median(r[key] for r in runs)
            for key in ("delivered_fps", "callback_p50_ms", "callback_p95_ms", "analysed_fps", "vitals_fps",
                        "process_cpu_s_per_s")
        },
        "runs": runs,
        "truth_heart_rate_bpm": truth_bpm,
        "targets": {"delivered_fps": ">= 25", "callback_p95_ms": "<= 5"},
    }
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        m = summary["median"]
        load = summary["machine"]["load_avg_1min"]
        print(f"median of {len(runs)} runs on {len(cores)} cores (load average {load:.1f}):"
              f" delivered {m['delivered_fps']:.1f} frames/s (target >= 25), callback p95 {m['callback_p95_ms']:.2f} ms"
              f" (target <= 5), p50 {m['callback_p50_ms']:.2f} ms, analysed {m['analysed_fps']:.1f} frames/s,"
              f" vitals {m['vitals_fps']:.1f} frames/s, process CPU {m['process_cpu_s_per_s']:.2f} cores"
              f" (pulse method {args.pulse_method or 'default'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
