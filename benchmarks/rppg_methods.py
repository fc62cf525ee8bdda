"""Heart-rate error and speed of every registered pulse method on synthetic clips.

Usage: ``python benchmarks/rppg_methods.py [--clips 4] [--seconds 12] [--repeats 3]``

Makes a few synthetic clips (known heart rate; smartmirror.synth, 320 x 240, 30 fps, mild head motion), runs
FaceMesh once per frame, then for each method: "trace" methods get the skin-ROI mean RGB
(smartmirror.vitals.signal.skin_roi_mean_rgb), "frames" methods the open-rppg-style face crops
(smartmirror.vitals.face_crops.crop_faces). Heart rate = spectral peak of the pulse (40-200 bpm). Speed is the
method's own work in frames/s (median of ``--repeats`` runs, torch limited to 2 threads; face tracking and
cropping excluded: they are shared by all methods). Prints one table; ``--json`` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_clips(n_clips: int, seconds: float) -> list[dict]:
    from smartmirror.face import FaceTracker
    from smartmirror.synth import SynthConfig, generate_frames
    from smartmirror.vitals.face_crops import crop_faces

    rates = np.linspace(58, 112, n_clips)
    clips = []
    for i, rate in enumerate(rates):
        config = SynthConfig(duration_s=seconds, width=320, height=240, heart_rate_bpm=float(rate),
                             head_motion_px=1.0, seed=40 + i)
        packets, truth = generate_frames(config)
        packets = list(packets)
        with FaceTracker() as tracker:
            faces = [tracker.process(p.image) for p in packets]
        crops, _ = crop_faces(packets, faces)
        clips.append({"packets": packets, "faces": faces, "crops": crops, "hr": truth.heart_rate_bpm})
    return clips


def skin_rgb(packets, faces) -> np.ndarray:
    from smartmirror.vitals.signal import skin_roi_mean_rgb

    rows = []
    for packet, face in zip(packets, faces, strict=True):
        rows.append(skin_roi_mean_rgb(packet.image, face).rgb if face is not None else np.full(3, np.nan))
    rgb = np.asarray(rows, dtype=np.float64)
    valid = np.all(np.isfinite(rgb), axis=1)
    rgb[~valid] = np.nanmean(rgb[valid], axis=0)
    return rgb


def main() -> None:
    import torch

    from smartmirror.vitals.methods import get_method, list_methods
    from smartmirror.vitals.training_data import spectral_peak_bpm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)

    clips = make_clips(args.clips, args.seconds)
    for clip in clips:
        try:
            clip["rgb"] = skin_rgb(clip["packets"], clip["faces"])
        except (ImportError, AttributeError):  # the unsupervised methods' ROI helper is not there
            clip["rgb"] = None
    rows = []
    for name in list_methods():
        method = get_method(name)
        errors, speeds = [], []
        for clip in clips:
            data = clip["crops"] if method.kind == "frames" else clip["rgb"]
            if data is None:
                break
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                pulse = method.fn(data, sampling_rate=30.0)
                times.append(time.perf_counter() - start)
            speeds.append(len(data) / statistics.median(times))
            errors.append(abs(spectral_peak_bpm(pulse, 30.0) - clip["hr"]))
        if errors:
            rows.append({"method": name, "kind": method.kind, "realtime": method.realtime,
                         "hr_mae_bpm": float(np.mean(errors)), "frames_per_s": float(np.median(speeds))})
    if args.json:
        print(json.dumps({"clips": args.clips, "seconds": args.seconds, "rows": rows}))
        return
    print(f"{args.clips} synthetic clips x {args.seconds:g} s, 320x240, 30 fps; torch threads 2")
    print(f"{'method':16s} {'kind':7s} {'live':5s} {'HR MAE (bpm)':>13s} {'frames/s':>10s}")
    for r in rows:
        print(f"{r['method']:16s} {r['kind']:7s} {'yes' if r['realtime'] else 'no':5s} "
              f"{r['hr_mae_bpm']:13.2f} {r['frames_per_s']:10.0f}")


if __name__ == "__main__":
    main()
