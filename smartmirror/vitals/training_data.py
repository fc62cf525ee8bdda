"""Training data for the learned rPPG networks: a dataset folder's clips and ground truth, at the model's rate.

Datasets: the layouts ``smartmirror eval`` reads (:mod:`smartmirror.vitals.ground_truth`: UBFC-rPPG
``<subject>/vid.avi`` + ``ground_truth.txt`` or ``gtdump.xmp``, and the flat ``name.avi`` + ``name.txt``).

Decode with true timestamps -> face crops (open-rppg's box from FaceMesh, or a centre crop as UltraLightNet did) ->
the model's fixed rate (nearest frame), cached on disk (:func:`prepare_clip`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartmirror.face import FaceTracker
from smartmirror.frames import read_video_packets
from smartmirror.vitals import ground_truth
from smartmirror.vitals.face_crops import crop_faces
from smartmirror.vitals.neural import model_rate_slots
from smartmirror.vitals.spectrum import HR_BAND_BPM


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset: its video and ground truth (``ppg`` and ``hr_bpm`` at ``times_s``)."""

    name: str
    video: Path
    ppg: np.ndarray
    times_s: np.ndarray
    hr_bpm: np.ndarray | None


@dataclass
class PreparedClip:
    """A clip at the model's frame rate: RGB crops (n, h, w, 3) uint8 and the PPG (n,) at the same instants."""

    name: str
    frames: np.ndarray
    ppg: np.ndarray
    hr_bpm: float
    fps: float


def find_clips(dataset_dir: str | Path) -> list[ClipRecord]:
    """The clips of a dataset folder with their ground truth read: the layouts and the file reading (with its
    repairs) of :mod:`smartmirror.vitals.ground_truth`, which ``smartmirror eval`` uses too.

    Raises
    ------
    DatasetError
        ``not_found``, ``no_clips`` or ``bad_ground_truth``.
    """
    records = []
    for clip in ground_truth.find_clips(dataset_dir):
        truth = ground_truth.read_ground_truth(clip.truth)
        records.append(ClipRecord(clip.name, clip.video, truth.ppg, truth.times_s, truth.heart_rate_bpm))
    return records


def _centre_crop(image_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = image_bgr.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    crop = cv2.resize(image_bgr[y0:y0 + side, x0:x0 + side], (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def prepare_clip(record: ClipRecord, *, input_size: tuple[int, int], fps: float, crop: str = "face",
                 cache_dir: Path | None = None) -> PreparedClip:
    """Decode, crop and re-time one clip (cached on disk by file, size and crop).

    Raises
    ------
    smartmirror.frames.VideoError
        When the video cannot be read.
    ValueError
        For an unknown crop mode or a clip where no face is found.
    """
    if crop not in ("face", "center"):
        raise ValueError(f"crop must be 'face' or 'center', got {crop!r}")
    stat = record.video.stat()
    key = hashlib.sha1(f"{record.video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{input_size}|{fps}|{crop}"
                       .encode()).hexdigest()[:16]
    cached = cache_dir / f"{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.exists():
        data = np.load(cached)
        frames, times = data["frames"], data["times"]
    else:
        packets = list(read_video_packets(record.video))
        times = np.array([p.t for p in packets])
        if crop == "center":
            frames = np.stack([_centre_crop(p.image, input_size) for p in packets])
        else:
            with FaceTracker() as tracker:
                faces = [tracker.process(p.image) for p in packets]
            if not any(f is not None for f in faces):
                raise ValueError(f"{record.video}: no face found")
            frames, _ = crop_faces(packets, faces, input_size)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cached, frames=frames, times=times)
    start = times[0]
    sampling_rate = (len(times) - 1) / max(times[-1] - start, 1e-6)
    slots = model_rate_slots(len(frames), sampling_rate, fps)
    grid = start + np.arange(len(slots)) / fps
    ppg = np.interp(grid, record.times_s, record.ppg)
    hr = float(np.mean(record.hr_bpm)) if record.hr_bpm is not None else spectral_peak_bpm(ppg, fps)
    return PreparedClip(record.name, frames[slots], ppg, hr, fps)


def spectral_peak_bpm(pulse: np.ndarray, fps: float, band_bpm: tuple[float, float] = HR_BAND_BPM) -> float:
    """Heart rate (bpm) at the peak of the pulse's power spectrum within ``band_bpm`` (zero-padded FFT)."""
    pulse = np.asarray(pulse, dtype=np.float64)
    pulse = (pulse - pulse.mean()) * np.hanning(len(pulse))
    n_fft = max(4096, 1 << int(math.ceil(math.log2(len(pulse)))))
    power = np.abs(np.fft.rfft(pulse, n_fft)) ** 2
    freqs_bpm = np.fft.rfftfreq(n_fft, 1 / fps) * 60
    inside = (freqs_bpm >= band_bpm[0]) & (freqs_bpm <= band_bpm[1])
    return float(freqs_bpm[inside][np.argmax(power[inside])])
