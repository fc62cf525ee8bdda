"""The bundled demo source: a synthetic pulse clip of a real face, for machines without a camera.

The clip is made once from the public-domain astronaut portrait with :mod:`smartmirror.synth` (72 beats/min,
16 breaths/min, no beat-to-beat jitter) and kept in the user cache folder (``smartmirror.paths.user_cache_dir``;
a demo clip is not user data). It lasts a whole number of beats and breaths, so it loops without a seam in the
pulse. Everything that shows it labels it DEMO.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from smartmirror.frames import FramePacket, read_video_packets
from smartmirror.paths import user_cache_dir
from smartmirror.synth import SynthConfig, SynthTruth, load_truth, make_clip

log = logging.getLogger(__name__)

#: Bump when the clip's recipe changes, so a stale cached clip is remade.
DEMO_VERSION = 1
DEMO_VIDEO_NAME = "demo.avi"
DEMO_LABEL = "DEMO: synthetic pulse clip, not a live camera"

_lock = threading.Lock()


def demo_config() -> SynthConfig:
    """The demo clip's recipe: 15 s = 18 beats at 72 beats/min = 4 breaths at 16 breaths/min (seamless loop)."""
    return SynthConfig(
        duration_s=15.0,
        fps=30.0,
        width=640,
        height=480,
        heart_rate_bpm=72.0,
        hrv_sd_ms=0.0,
        respiratory_sinus_arrhythmia_bpm=0.0,
        respiration_rate_bpm=16.0,
        pulse_amplitude=0.008,
        noise_sd=1.0,
        codec="mjpeg",
        seed=7,
    )


def demo_dir() -> Path:
    """The folder that holds the demo clip (inside the user cache folder)."""
    return user_cache_dir() / f"demo-v{DEMO_VERSION}"


def ensure_demo_clip() -> tuple[Path, SynthTruth]:
    """Path of the demo clip and its ground truth, making it first when missing (about 15 s, once).

    The clip is written to a temporary folder and moved into place, so an interrupted run or two processes
    starting at once never leave a half-written clip behind.
    """
    directory = demo_dir()
    video = directory / DEMO_VIDEO_NAME
    with _lock:
        if video.exists() and (directory / "truth.json").exists():
            return video, load_truth(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=directory.parent))
        try:
            log.info("making the demo clip in %s (once)", directory)
            config = demo_config()
            make_clip(staging, config, video_name=DEMO_VIDEO_NAME)
            try:
                os.replace(staging, directory)
            except OSError:  # another process won the race: use its clip
                if not (directory / DEMO_VIDEO_NAME).exists():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        log.info("demo clip ready: %s", asdict(demo_config()) | {"path": str(video)})
        return video, load_truth(directory)


def demo_packets(*, realtime: bool = True) -> Iterator[FramePacket]:
    """The demo clip looped forever, with a clock that keeps increasing across loops."""
    video, _truth = ensure_demo_clip()
    return read_video_packets(video, realtime=realtime, loop=True)
