"""Make tests/data/physrecorder_v01_15fps.mkv and its truth from the PhysRecorder example recording (MIT).

    python scripts/make_physrecorder_clip.py PHYSRECORDER/Example/v01 [--out tests/data]

The source is github.com/KegangWangCCNU/PhysRecorder, ``Example/v01``: 20 s of a seated person from a Logitech
C930c at 640x480, 30 frames/s, saved lossless as PNG frames, with a finger-oximeter PPG (``BVP.csv``). The PNGs
(200 MB) are too big for the repository; the test clip keeps every other frame (15 frames/s, what the browser
test's fake camera plays) as H.264 at CRF 12 (about 4 MB; the skin trace keeps its pulse: 82 % of 10 s POS
windows within 3 bpm of the oximeter, as in the lossless frames). The oximeter's mean rate goes beside it in
``physrecorder_v01_truth.json``, with ``loop_frames``: the first and last strong pulse peaks of the clip's own
skin trace (POS on the ROI colours), where a forward-then-backward loop joins itself smoothly (at a peak the
pulse is flat, so the mirror image of the waveform continues it; at any other phase it would kink).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def contact_heart_rate_bpm(times_s: np.ndarray, bvp: np.ndarray) -> float:
    """Mean heart rate of a contact PPG trace: the peak of its whole-trace spectrum in 40-180 bpm."""
    from scipy.signal import welch

    rate = 1.0 / float(np.median(np.diff(times_s)))
    grid = np.arange(times_s[0], times_s[-1], 1.0 / rate)
    signal = np.interp(grid, times_s, bvp - np.mean(bvp))
    freqs, power = welch(signal, fs=rate, nperseg=len(signal), nfft=1 << 16, detrend="linear")
    band = (freqs >= 40 / 60) & (freqs <= 180 / 60)
    return float(freqs[band][np.argmax(power[band])] * 60.0)


def loop_frames(video: Path, fps: float) -> list[int]:
    """First and last pulse peaks (frame indices) of the clip's skin trace, away from the filter's edges."""
    import av
    from scipy.signal import find_peaks

    from smartmirror.face import FaceTracker
    from smartmirror.vitals.rppg import extract_pulse
    from smartmirror.vitals.signal import LandmarkSmoother, bandpass, skin_roi_mean_rgb

    rgb = []
    smoother = LandmarkSmoother()
    with av.open(str(video)) as container, FaceTracker() as tracker:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            face = tracker.process(image)
            rgb.append(skin_roi_mean_rgb(image, smoother.update(face.landmarks_px)).rgb)
    pulse = bandpass(extract_pulse(np.array(rgb), sampling_rate=fps, method="pos"), sampling_rate=fps,
                     low_hz=0.7, high_hz=3.0)
    peaks, _ = find_peaks(pulse, distance=int(0.5 * fps))
    edge = int(fps)  # the band-pass rings in the first and last second
    inner = peaks[(peaks >= edge) & (peaks < len(pulse) - edge)]
    return [int(inner[0]), int(inner[-1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path, help="the Example/v01 folder (PNG frames and BVP.csv)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data")
    args = parser.parse_args(argv)
    with open(args.recording / "BVP.csv") as f:
        rows = [(float(r["timestamp"]), float(r["bvp"])) for r in csv.DictReader(f)]
    times, bvp = np.array(rows).T
    video = args.out / "physrecorder_v01_15fps.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", "30", "-i",
                    str(args.recording / "pictures_ZIP_RAW_RGB" / "%08d.png"),
                    "-vf", r"select=not(mod(n\,2)),setpts=N/15/TB", "-r", "15", "-c:v", "libx264", "-preset", "slow",
                    "-crf", "12", "-pix_fmt", "yuv420p", str(video)], check=True)
    truth = {"heart_rate_bpm": round(contact_heart_rate_bpm(times, bvp), 1), "fps": 15,
             "loop_frames": loop_frames(video, 15.0),
             "source": "github.com/KegangWangCCNU/PhysRecorder Example/v01 (MIT)",
             "reference": "finger-oximeter PPG (BVP.csv), peak of the whole-trace spectrum"}
    (args.out / "physrecorder_v01_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(video, truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
