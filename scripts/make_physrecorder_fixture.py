"""Make tests/fixtures/physrecorder_v01_trace.npz: the skin-ROI colour trace of PhysRecorder's example recording.

Usage: ``python scripts/make_physrecorder_fixture.py RECORDING_DIR [--out tests/fixtures/physrecorder_v01_trace.npz]``

RECORDING_DIR is ``Example/v01`` of https://github.com/KegangWangCCNU/PhysRecorder (MIT licence): 602 lossless PNG
frames of a seated person (640 x 480, Logitech C930c, about 30 frames/s, 20 s), ``frames_timestamp.csv`` (capture
time of each frame) and ``BVP.csv`` (finger-oximeter pulse wave, about 20 samples/s). The frames go through the
project's own per-frame code (FaceMesh, :class:`smartmirror.vitals.analyzer.VitalsAnalyzer` with its ROI), so the
fixture is exactly the trace the clip report would measure; only these numbers are kept (a few KB), no pixels.
Re-run it after changing the ROI code (smartmirror/vitals/signal.py) so the fixture follows.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_csv_columns(path: Path) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV with a header row."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [r for r in rows[1:] if r]
    return {name: np.array([float(r[k]) for r in body]) for k, name in enumerate(header)}


def main() -> None:
    import cv2

    from smartmirror.face import FaceTracker
    from smartmirror.frames import FramePacket
    from smartmirror.vitals.analyzer import VitalsAnalyzer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "tests/fixtures/physrecorder_v01_trace.npz")
    args = parser.parse_args()
    stamps = read_csv_columns(args.recording / "frames_timestamp.csv")
    bvp = read_csv_columns(args.recording / "BVP.csv")
    t0 = float(stamps["timestamp"][0])
    analyzer = VitalsAnalyzer(method="pos", live=False, max_seconds=1e9)
    with FaceTracker(static_image_mode=False) as tracker:
        for index, stamp in zip(stamps["frame"].astype(int), stamps["timestamp"], strict=True):
            image = cv2.imread(str(args.recording / "pictures_ZIP_RAW_RGB" / f"{index:08d}.png"), cv2.IMREAD_COLOR)
            if image is None:
                sys.exit(f"cannot read frame {index}")
            packet = FramePacket(t=float(stamp) - t0, image=image, index=int(index))
            analyzer.update(packet, tracker.process(image))
    trace = analyzer.trace()
    np.savez_compressed(
        args.out, times_s=trace.times_s, rgb=trace.rgb, presence=trace.presence, skin_fraction=trace.skin_fraction,
        face_y=trace.face_y, bvp_times_s=bvp["timestamp"] - t0, bvp=bvp["bvp"],
    )
    print(f"{args.out}: {trace.frames} frames, face in {int(np.isfinite(trace.presence).sum())}, "
          f"{len(bvp['bvp'])} BVP samples")


if __name__ == "__main__":
    main()
