"""Training data for the learned rPPG networks: a dataset folder's clips and ground truth, at the model's rate.

Datasets: the UBFC-rPPG layout (``<subject>/vid.avi`` + ``<subject>/ground_truth.txt``) and the flat
layout (``name.avi`` + ``name.txt``); the text file has three lines: PPG samples, heart rate (bpm; optional,
ignored when it does not match), times in seconds. Any container FFmpeg reads is accepted for the video.

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
from smartmirror.frames import VIDEO_SUFFIXES, read_video_packets
from smartmirror.vitals.neural import crop_faces, model_rate_slots
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


def read_ground_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read a three-line ground-truth file: (ppg, heart rate bpm or None, times in seconds).

    Raises
    ------
    ValueError
        When the file has fewer than three lines, or the PPG and time lines differ in length.
    """
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) < 3:
        raise ValueError(f"{path}: expected 3 lines (PPG, heart rate, time), found {len(lines)}")
    try:
        ppg, hr, times = (np.array(line.replace(",", " ").split(), dtype=np.float64) for line in lines[:3])
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value in the ground truth ({exc})") from None
    if len(ppg) != len(times) or len(ppg) < 2:
        raise ValueError(f"{path}: {len(ppg)} PPG samples but {len(times)} times")
    return ppg, (hr if len(hr) == len(ppg) else None), times


def find_clips(dataset_dir: str | Path) -> list[ClipRecord]:
    """The clips of a UBFC-style or flat clip + .txt folder, sorted by name.

    Raises
    ------
    FileNotFoundError
        When the folder does not exist or holds no clip with ground truth.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    records = []
    for truth in sorted(root.rglob("ground_truth.txt")):
        videos = [p for p in sorted(truth.parent.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
        if videos:
            ppg, hr, times = read_ground_truth(truth)
            records.append(ClipRecord(truth.parent.relative_to(root).as_posix() or root.name, videos[0], ppg,
                                      times, hr))
    for video in sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        truth = video.with_suffix(".txt")
        if truth.exists():
            ppg, hr, times = read_ground_truth(truth)
            records.append(ClipRecord(video.stem, video, ppg, times, hr))
    if not records:
        raise FileNotFoundError(f"no clips with ground truth in {root} (UBFC: <subject>/vid.avi + ground_truth.txt; "
                                "flat: name.avi + name.txt)")
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
