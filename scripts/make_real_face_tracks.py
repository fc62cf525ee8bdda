"""Make the committed face-track fixtures of tests/data/ from the public recordings listed in its README.

    .venv/bin/python scripts/make_real_face_tracks.py DATA_DIR

``DATA_DIR`` holds the recordings as extracted from their sources (tests/data/README.md says where each comes
from): ``yawdd/``, ``physrecorder_h264/``, ``pyfeat/``, ``still_faces/`` and ``bias_eval_rppg/``. Each clip is
tracked with the app's FaceMesh tracker and skin ROI (:func:`smartmirror.fatigue.track.record_track`) and the
named span is written as ``tests/data/tracks/<name>.npz``: landmark geometry of the eyes, mouth, nose and chin,
head pose, presence score, skin fraction and the ROI's mean colour per frame; never pixels.

The darker-skin patches (``tests/data/skin_patches_bias_eval_rppg.npz``) are three frames (at 1, 3 and 5 s)
of each bias-eval-rppg forehead clip that is not too dark to see (median luma at least 20), shrunk to 40x40.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from smartmirror.fatigue.track import record_track  # noqa: E402
from smartmirror.frames import read_video_packets  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tracks"

#: name -> (path under DATA_DIR, start s, end s)
FIXTURES = {
    "yawdd_46_male_glasses_yawning": ("yawdd/46-MaleGlasses-Yawning.avi", 0.0, 30.0),
    "yawdd_32_male_glasses_talking_yawning": ("yawdd/32-MaleGlasses-Talking&Yawning.avi", 0.0, 30.0),
    "yawdd_11_female_sunglasses_talking_yawning": ("yawdd/11-FemaleGlasses.avi.avi", 14.0, 32.0),
    "physrecorder_webcam_glasses_fringe": ("physrecorder_h264/video_ZIP_H264.avi", 0.0, 30.0),
    "pexels_wolfgang_langer_expressions": ("pyfeat/WolfgangLanger_Pexels.mp4", 0.0, 30.0),
    "still_physrecorder_frame": ("still_faces/still_physrecorder.mp4", 0.0, 30.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with the extracted recordings")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    tracks: dict[str, object] = {}
    for name, (relative, start, end) in FIXTURES.items():
        if relative not in tracks:
            tracks[relative] = record_track(args.data / relative)
        track = tracks[relative].clip(start, end)
        path = OUT / f"{name}.npz"
        track.save(path)
        print(f"{path.name}: {len(track)} frames, {path.stat().st_size} bytes")
    write_skin_patches(args.data / "bias_eval_rppg", OUT.parent / "skin_patches_bias_eval_rppg.npz")
    return 0


def write_skin_patches(folder: Path, path: Path, size: int = 40, times_s: tuple[float, ...] = (1.0, 3.0, 5.0)) -> None:
    """40x40 BGR forehead patches of the bias-eval-rppg clips, keyed by clip name."""
    patches: dict[str, np.ndarray] = {}
    for video in sorted(folder.glob("*_forehead.avi")):
        frames = []
        for packet in read_video_packets(video, max_seconds=max(times_s) + 0.1):
            if any(abs(packet.t - t) < 0.034 for t in times_s) and len(frames) < len(times_s):
                frames.append(cv2.resize(packet.image, (size, size), interpolation=cv2.INTER_AREA))
        luma = np.median(cv2.cvtColor(frames[0], cv2.COLOR_BGR2YCrCb)[..., 0])
        if luma >= 20:
            patches[video.stem] = np.stack(frames)
    np.savez_compressed(path, **patches)
    print(f"{path.name}: {len(patches)} clips, {path.stat().st_size} bytes")


if __name__ == "__main__":
    raise SystemExit(main())
