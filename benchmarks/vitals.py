"""Vitals benchmark: heart-rate MAE per pulse method over a fixed synthetic set, and the report's speed.

Three parts, all on fixed seeds so runs compare:

1. videos: 8 synthetic 640x480 MJPEG clips (smartmirror.synth, the astronaut), 12 s, heart rates 48-180 beats/min
   with head sway (2 px), sensor noise (2 grey levels) and beat-to-beat variability scaled to the rate. Frames
   are decoded and face-tracked once per clip; every method then runs on the same ROI trace. The rendered clips
   are cached in the user cache folder (``--cache``).
2. traces: 36 s colour traces without rendering (smartmirror.vitals.simulate) in four noise regimes: low
   sensor noise, high sensor noise (independent per channel), motion shading (equal in all channels, as
   head movement under a lamp) and both together. Heart-rate MAE and RMSSD error against the generator's beats.
3. speed: ``analyze_video`` on a 15 s 640x480 MJPEG clip, vitals only and the full report (emotion and
   fatigue too when installed); median of ``--repeats`` runs, as x real time.

Run: ``.venv/bin/python benchmarks/vitals.py`` (first run renders the clips: a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIDEO_RATES_BPM = (48, 62, 75, 90, 110, 135, 160, 180)
TRACE_RATES_BPM = (48, 60, 75, 90, 110, 130, 155, 180)
TRACE_REGIMES = {
    "low noise": {"roi_noise": 0.0002},
    "sensor noise": {"roi_noise": 0.002},
    "motion shading": {"roi_noise": 0.0003, "motion_intensity": 0.01, "motion_hz": 2.0},
    "noise + motion": {"roi_noise": 0.004, "motion_intensity": 0.01, "motion_hz": 2.0},
}


def scaled_hrv_ms(rate_bpm: float) -> float:
    """Beat-to-beat jitter that shrinks with the rate (30 ms at 72 beats/min), as it does in people."""
    return 30.0 * (72.0 / rate_bpm) ** 2


def video_set(cache: Path) -> list[tuple[str, Path]]:
    from smartmirror.synth import SynthConfig, make_clip

    clips = []
    for i, rate in enumerate(VIDEO_RATES_BPM):
        folder = cache / f"hr{rate:03d}"
        if not (folder / "truth.json").exists():
            print(f"rendering {folder} ...", file=sys.stderr)
            config = SynthConfig(duration_s=12.0, heart_rate_bpm=float(rate), hrv_sd_ms=scaled_hrv_ms(rate),
                                 head_motion_px=2.0, noise_sd=2.0, codec="mjpeg", seed=100 + i)
            make_clip(folder, config, video_name="vid.avi")
        clips.append((folder.name, folder))
    return clips


def bench_videos(cache: Path, methods: list[str]) -> dict[str, dict[str, float]]:
    from smartmirror.synth import load_truth
    from smartmirror.vitals.pipeline import analyze_trace
    from smartmirror.vitals.video import video_trace

    errors: dict[str, list[float]] = {m: [] for m in methods}
    reported: dict[str, int] = {m: 0 for m in methods}
    clips = video_set(cache)
    for _name, folder in clips:
        truth = load_truth(folder)
        trace = video_trace(folder / "vid.avi")
        for method in methods:
            result = analyze_trace(trace, method=method)
            estimate = result.heart_rate.tracked_bpm
            errors[method].append(abs(estimate - truth.heart_rate_bpm) if estimate is not None else 60.0)
            reported[method] += result.heart_rate.heart_rate_bpm is not None
    return {m: {"hr_mae_bpm": float(np.mean(errors[m])), "hr_max_err_bpm": float(np.max(errors[m])),
                "reported": reported[m] / len(clips)} for m in methods}


def bench_traces(methods: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    from smartmirror.synth import SynthConfig
    from smartmirror.vitals.pipeline import analyze_trace
    from smartmirror.vitals.simulate import simulate_trace

    out: dict[str, dict[str, dict[str, float]]] = {}
    for regime, noise in TRACE_REGIMES.items():
        errors: dict[str, list[float]] = {m: [] for m in methods}
        rmssd_errors: dict[str, list[float]] = {m: [] for m in methods}
        reported: dict[str, int] = {m: 0 for m in methods}
        for i, rate in enumerate(TRACE_RATES_BPM):
            config = SynthConfig(duration_s=36.0, heart_rate_bpm=float(rate), hrv_sd_ms=scaled_hrv_ms(rate), seed=i)
            trace, truth = simulate_trace(config, **noise)
            intervals = np.diff(truth.beat_times_s) * 1000.0
            true_rmssd = float(np.sqrt(np.mean(np.diff(intervals) ** 2)))
            for method in methods:
                result = analyze_trace(trace, method=method)
                estimate = result.heart_rate.tracked_bpm
                errors[method].append(abs(estimate - truth.heart_rate_bpm) if estimate is not None else 60.0)
                reported[method] += result.heart_rate.heart_rate_bpm is not None
                rmssd = None if result.hrv is None else result.hrv.rmssd_ms
                if rmssd is not None:
                    rmssd_errors[method].append(abs(rmssd - true_rmssd))
        out[regime] = {m: {"hr_mae_bpm": float(np.mean(errors[m])),
                           "rmssd_mae_ms": float(np.mean(rmssd_errors[m])) if rmssd_errors[m] else None,
                           "reported": reported[m] / len(TRACE_RATES_BPM),
                           "hrv_reported": len(rmssd_errors[m]) / len(TRACE_RATES_BPM)} for m in methods}
    return out


def bench_speed(cache: Path, repeats: int) -> dict[str, dict[str, float]]:
    from smartmirror.report import analyze_video
    from smartmirror.synth import SynthConfig, make_clip

    folder = cache / "speed15"
    if not (folder / "truth.json").exists():
        print(f"rendering {folder} ...", file=sys.stderr)
        make_clip(folder, SynthConfig(duration_s=15.0, codec="mjpeg", head_motion_px=1.0, seed=7), video_name="vid.avi")
    video = folder / "vid.avi"
    results = {}
    for label, sections in (("vitals only", ()), ("full report", ("emotion", "fatigue"))):
        totals, timings = [], []
        for _ in range(repeats):
            report = analyze_video(video, sections=sections)
            totals.append(report["timings_s"]["total"])
            timings.append(report["timings_s"])
        median = statistics.median(totals)
        typical = timings[totals.index(sorted(totals)[len(totals) // 2])]
        results[label] = {"seconds": median, "x_real_time": 15.0 / median, "timings_s": typical,
                          "heart_rate_bpm": report["heart_rate_bpm"]}
    return results


def main() -> None:
    from smartmirror.paths import user_cache_dir
    from smartmirror.vitals.methods import list_methods

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="Folder for the rendered clips.")
    parser.add_argument("--repeats", type=int, default=3, help="Speed runs (median).")
    parser.add_argument("--skip", nargs="*", default=[], choices=["videos", "traces", "speed"])
    parser.add_argument("--json", action="store_true", help="Also print the numbers as one JSON object.")
    args = parser.parse_args()
    cache = args.cache or (user_cache_dir() / "bench_vitals")
    cache.mkdir(parents=True, exist_ok=True)
    methods = list_methods(kind="trace")
    out: dict = {"methods": methods}
    if "videos" not in args.skip:
        out["videos"] = bench_videos(cache, methods)
        print(f"\nHeart-rate MAE on {len(VIDEO_RATES_BPM)} synthetic 640x480 MJPEG clips (48-180 beats/min, head sway, "
              "noise); 'reported' = share above the confidence gate")
        for method, row in out["videos"].items():
            print(f"  {method:8s} MAE {row['hr_mae_bpm']:6.2f} bpm   max {row['hr_max_err_bpm']:6.2f}   "
                  f"reported {100 * row['reported']:5.1f} %")
    if "traces" not in args.skip:
        out["traces"] = bench_traces(methods)
        print(f"\nColour traces, 36 s, {len(TRACE_RATES_BPM)} rates each: heart-rate MAE (bpm) / share reported above "
              "the gate / RMSSD MAE (ms)")
        for regime, rows in out["traces"].items():
            cells = []
            for method, row in rows.items():
                rmssd = "—" if row["rmssd_mae_ms"] is None else f"{row['rmssd_mae_ms']:.1f}"
                cells.append(f"{method} {row['hr_mae_bpm']:.2f}/{100 * row['reported']:.0f}%/{rmssd}")
            print(f"  {regime:15s} " + "   ".join(cells))
    if "speed" not in args.skip:
        out["speed"] = bench_speed(cache, args.repeats)
        print(f"\nReport speed, 15 s 640x480 MJPEG clip, median of {args.repeats}")
        for label, row in out["speed"].items():
            t = row["timings_s"]
            print(f"  {label:12s} {row['seconds']:6.2f} s = {row['x_real_time']:5.2f}x real time   (decode "
                  f"{t['decode']:.2f}, face {t['face']:.2f}, vitals {t['vitals']:.2f}, emotion {t['emotion']:.2f}, "
                  f"fatigue {t['fatigue']:.2f})")
    if args.json:
        print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
