"""Synthetic pulse videos with known ground truth, made from a real face photo.

The skin of a real face (found with FaceMesh: the face oval less eyes, brows and mouth) is modulated by a
PPG-like blood-volume waveform with per-channel weights, so rPPG methods see what they see on people, with every
nuisance under control: heart-rate drift, beat-to-beat variability, respiration (baseline, amplitude and
vertical head motion), head sway, illumination drift, sensor noise, dropped frames and the codec.

Written in the UBFC-rPPG layout: ``vid.avi`` (or another container) + ``ground_truth.txt`` (PPG line, HR line,
time line) + ``truth.json`` (mean heart rate, respiration rate, beat times, frame times, parameters).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from smartmirror.face import REGIONS, FaceTracker
from smartmirror.frames import FramePacket

log = logging.getLogger(__name__)

#: Relative pulse amplitude per channel (B, G, R order, as the frames are BGR), after the normalised
#: blood-volume-pulse signature of de Haan & van Leest (2014): green strongest, then blue, red weakest.
BVP_WEIGHTS_BGR = (0.60, 0.77, 0.33)

#: Face-oval outline from FaceMesh (ordered), and the features to cut out of the skin.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LEFT_BROW = (336, 296, 334, 293, 300, 276, 283, 282, 295, 285)
RIGHT_BROW = (107, 66, 105, 63, 70, 46, 53, 52, 65, 55)


@dataclass
class SynthConfig:
    """Everything that shapes a synthetic clip (units in the names)."""

    duration_s: float = 20.0
    fps: float = 30.0
    width: int = 640
    height: int = 480
    heart_rate_bpm: float = 72.0
    heart_rate_drift_bpm: float = 0.0          # linear change over the clip (end minus start)
    hrv_sd_ms: float = 30.0                    # beat-to-beat jitter of the inter-beat intervals
    respiration_rate_bpm: float = 15.0         # breaths per minute
    respiratory_sinus_arrhythmia_bpm: float = 3.0  # heart-rate swing with each breath
    pulse_amplitude: float = 0.006             # relative change of green skin intensity, peak to trough
    harmonic_ratio: float = 0.25               # amplitude of the 2nd harmonic relative to the fundamental
    dicrotic_ratio: float = 0.3                # dicrotic notch bump relative to the systolic peak
    breath_amplitude: float = 0.002            # relative baseline change with each breath
    breath_motion_px: float = 1.5              # vertical head motion with each breath (pixels)
    head_motion_px: float = 0.0                # random-walk head sway (pixels, standard deviation)
    head_motion_hz: float = 0.3                # speed of the sway
    illumination_drift: float = 0.0            # relative brightness change over the clip
    noise_sd: float = 1.0                      # sensor noise, grey levels
    drop_prob: float = 0.0                     # probability that a frame is dropped (true timestamps kept)
    frame_jitter_s: float = 0.0                # capture-clock jitter of each frame time (seconds)
    codec: str = "ffv1"                        # ffv1 (lossless), mjpeg, or rawvideo
    still: bool = False                        # no pulse at all (a photo held to the camera)
    seed: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class SynthTruth:
    """Ground truth of one clip."""

    heart_rate_bpm: float                     # mean over the clip
    respiration_rate_bpm: float
    beat_times_s: list[float]
    frame_times_s: list[float]
    ppg: list[float]                          # the blood-volume waveform at each frame (arbitrary units)
    heart_rate_series_bpm: list[float]        # instantaneous heart rate at each frame
    config: dict


def default_face_image() -> np.ndarray:
    """The astronaut portrait from scikit-image (public domain) as BGR uint8."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _fit_to_frame(image_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop the photo to the frame size."""
    h, w = image_bgr.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0 = (resized.shape[0] - height) // 2
    x0 = (resized.shape[1] - width) // 2
    # keep the face in view: the astronaut's face sits in the upper part of the photo
    y0 = min(y0, max(0, resized.shape[0] - height))
    return np.ascontiguousarray(resized[max(0, y0 - y0 // 2):][:height, x0:x0 + width])


def skin_mask(image_bgr: np.ndarray) -> np.ndarray:
    """Float mask 0..1 of facial skin (face oval less eyes, brows and mouth), feathered at the edges.

    Raises
    ------
    ValueError
        When no face is found in the image.
    """
    with FaceTracker(static_image_mode=True, max_num_faces=1) as tracker:
        face = tracker.process(image_bgr)
    if face is None:
        raise ValueError("No face found in the image given to the synthetic video generator")
    mask = np.zeros(image_bgr.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [face.region_polygon("forehead")], 1)  # ensure the forehead is in even if oval is tight
    cv2.fillPoly(mask, [np.round(face.points_2d(FACE_OVAL)).astype(np.int32)], 1)
    for polygon in (REGIONS["left_eye"], REGIONS["right_eye"], REGIONS["mouth"], LEFT_BROW, RIGHT_BROW):
        points = np.round(face.points_2d(polygon)).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(points)], 0)
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=2.0)


def beat_times(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Beat onset times (seconds) with drift, respiratory sinus arrhythmia and random IBI jitter."""
    times = [rng.uniform(0, 60.0 / config.heart_rate_bpm)]
    end = config.duration_s + 2.0
    while times[-1] < end:
        t = times[-1]
        rate = config.heart_rate_bpm + config.heart_rate_drift_bpm * t / config.duration_s
        rate += config.respiratory_sinus_arrhythmia_bpm * np.sin(2 * np.pi * config.respiration_rate_bpm / 60 * t)
        ibi = 60.0 / max(rate, 20.0) + rng.normal(0, config.hrv_sd_ms / 1000.0)
        times.append(t + max(ibi, 0.25))
    return np.asarray(times)


def ppg_waveform(t: np.ndarray, beats: np.ndarray, *, harmonic_ratio: float, dicrotic_ratio: float) -> np.ndarray:
    """Blood-volume waveform at times ``t``: per beat, a systolic rise and a dicrotic bump (zero mean, unit sd).

    The beat phase (0..1 between consecutive beats) drives a fundamental plus a second harmonic, and a Gaussian
    dicrotic wave, so the spectrum has the harmonics real pulses have.
    """
    index = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2)
    phase = (t - beats[index]) / (beats[index + 1] - beats[index])
    wave = -np.cos(2 * np.pi * phase) + harmonic_ratio * -np.cos(4 * np.pi * phase + 0.6)
    wave += dicrotic_ratio * np.exp(-((phase - 0.55) ** 2) / (2 * 0.06**2))
    wave = wave - wave.mean()
    sd = wave.std()
    return wave / sd if sd > 0 else wave


def frame_times(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Capture times (seconds): a nominal grid, jittered, with dropped frames removed."""
    grid = np.arange(int(round(config.duration_s * config.fps))) / config.fps
    if config.frame_jitter_s > 0:
        grid = grid + rng.uniform(-config.frame_jitter_s, config.frame_jitter_s, size=grid.shape)
        grid[0] = max(grid[0], 0.0)
        grid = np.maximum.accumulate(grid)
    if config.drop_prob > 0:
        keep = rng.random(grid.shape) >= config.drop_prob
        keep[0] = True
        grid = grid[keep]
    return grid


def clip_signals(config: SynthConfig) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """The clip's random generator (after its draws), beat times, frame times (s) and pulse waveform per frame.

    Every consumer of a config (the video renderer, the trace simulator) draws in this order, so the same config
    and seed give the same beats and frames everywhere.
    """
    rng = np.random.default_rng(config.seed)
    beats = beat_times(config, rng)
    times = frame_times(config, rng)
    ppg = ppg_waveform(times, beats, harmonic_ratio=config.harmonic_ratio, dicrotic_ratio=config.dicrotic_ratio)
    if config.still:
        ppg = np.zeros_like(ppg)
    return rng, beats, times, ppg


def ground_truth(config: SynthConfig, beats: np.ndarray, times: np.ndarray, ppg: np.ndarray) -> SynthTruth:
    """The truth record of a clip: mean heart rate over the beats inside it, per-frame rate, beats, waveform."""
    ibis = np.diff(beats)
    beat_mid = beats[:-1] + ibis / 2
    clip_beats = beats[(beats >= 0) & (beats <= config.duration_s)]
    mean_hr = float(60.0 / np.mean(np.diff(clip_beats))) if len(clip_beats) > 2 else config.heart_rate_bpm
    return SynthTruth(
        heart_rate_bpm=mean_hr,
        respiration_rate_bpm=config.respiration_rate_bpm,
        beat_times_s=[float(b) for b in clip_beats],
        frame_times_s=[float(t) for t in times],
        ppg=[float(p) for p in ppg],
        heart_rate_series_bpm=[float(h) for h in np.interp(times, beat_mid, 60.0 / ibis)],
        config=asdict(config),
    )


def generate_frames(
    config: SynthConfig, image_bgr: np.ndarray | None = None
) -> tuple[Iterator[FramePacket], SynthTruth]:
    """Make the clip lazily: an iterator of packets and the ground truth.

    Parameters
    ----------
    config : SynthConfig
        Clip parameters.
    image_bgr : ndarray, optional
        A face photo; default the astronaut portrait.
    """
    base = _fit_to_frame(default_face_image() if image_bgr is None else image_bgr, config.width, config.height)
    mask = skin_mask(base)
    rng, beats, times, ppg = clip_signals(config)
    breath = np.sin(2 * np.pi * config.respiration_rate_bpm / 60.0 * times)
    truth = ground_truth(config, beats, times, ppg)
    # extra["bvp_weights_bgr"] overrides the channel weights (e.g. a red amplitude for a synthetic SpO2)
    bvp = tuple(config.extra.get("bvp_weights_bgr", BVP_WEIGHTS_BGR))
    weights = np.asarray(bvp, dtype=np.float32) / bvp[1]
    sway = _sway(times, config, rng)
    base_f = base.astype(np.float32)
    mask3 = mask[..., None]

    def frames() -> Iterator[FramePacket]:
        noise_rng = np.random.default_rng(config.seed + 1)
        for i, t in enumerate(times):
            pulse = 0.5 * config.pulse_amplitude * ppg[i] * weights          # per channel, relative
            breath_gain = config.breath_amplitude * breath[i]
            gain = 1.0 + mask3 * (pulse + breath_gain)
            light = 1.0 + config.illumination_drift * (t / config.duration_s)
            image = base_f * gain * light
            dx, dy = sway[i]
            dy += config.breath_motion_px * breath[i]
            if dx or dy:
                shift = np.float32([[1, 0, dx], [0, 1, dy]])
                image = cv2.warpAffine(image, shift, (config.width, config.height), borderMode=cv2.BORDER_REFLECT)
            if config.noise_sd > 0:
                image = image + noise_rng.standard_normal(image.shape, dtype=np.float32) * np.float32(config.noise_sd)
            yield FramePacket(t=float(t), image=np.clip(image + 0.5, 0, 255).astype(np.uint8), index=i)

    return frames(), truth


def _sway(times: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Smooth random head translation (pixels) per frame, shape (n, 2)."""
    if config.head_motion_px <= 0:
        return np.zeros((len(times), 2))
    n_knots = max(4, int(config.duration_s * config.head_motion_hz * 2) + 2)
    knot_t = np.linspace(times[0], times[-1] + 1e-6, n_knots)
    knots = rng.normal(0, config.head_motion_px, size=(n_knots, 2))
    from scipy.interpolate import CubicSpline

    return CubicSpline(knot_t, knots)(times)


_CODECS = {"ffv1": ("ffv1", "bgr0"), "mjpeg": ("mjpeg", "yuvj420p"), "rawvideo": ("rawvideo", "bgr24"),
           "mpeg4": ("mpeg4", "yuv420p"), "h264": ("libx264", "yuv420p")}


def write_video(path: str | Path, packets: Iterator[FramePacket], *, fps: float, codec: str = "ffv1") -> int:
    """Encode packets to a video whose presentation timestamps are the packets' times (millisecond grid).

    Returns the number of frames written. AVI stores one frame per tick of ``1/fps``, so on AVI a packet time
    is rounded to the nearest tick (dropped frames leave gaps); MKV stores the times themselves.
    """
    from fractions import Fraction

    import av

    if codec not in _CODECS:
        raise ValueError(f"Unknown codec {codec!r}; choose one of {sorted(_CODECS)}")
    codec_name, pix_fmt = _CODECS[codec]
    path = Path(path)
    is_avi = path.suffix.lower() == ".avi"
    count = 0
    with av.open(str(path), mode="w") as container:
        rate = Fraction(round(fps * 1000), 1000)
        stream = container.add_stream(codec_name, rate=rate)
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, 1) / rate if is_avi else Fraction(1, 1000)
        stream.codec_context.time_base = stream.time_base  # else the encoder rounds pts to its 1/fps grid
        if codec == "mjpeg":
            stream.options = {"qscale": "2"}
            stream.codec_context.qmin = 1
            stream.codec_context.qmax = 3
        last_pts = -1
        for packet in packets:
            if count == 0:
                stream.width, stream.height = packet.image.shape[1], packet.image.shape[0]
            frame = av.VideoFrame.from_ndarray(packet.image, format="bgr24")
            pts = int(round(packet.t / float(stream.time_base)))
            pts = max(pts, last_pts + 1)
            frame.pts = last_pts = pts
            frame.time_base = stream.time_base
            for out in stream.encode(frame):
                container.mux(out)
            count += 1
        for out in stream.encode():
            container.mux(out)
    return count


def write_ground_truth(directory: str | Path, truth: SynthTruth) -> None:
    """Write ``ground_truth.txt`` (UBFC: PPG line, HR line, time line) and ``truth.json``."""
    directory = Path(directory)
    lines = [
        " ".join(f"{v:.6f}" for v in truth.ppg),
        " ".join(f"{v:.3f}" for v in truth.heart_rate_series_bpm),
        " ".join(f"{v:.6f}" for v in truth.frame_times_s),
    ]
    (directory / "ground_truth.txt").write_text("\n".join(lines) + "\n")
    (directory / "truth.json").write_text(json.dumps(asdict(truth), indent=1))


def make_clip(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    image_bgr: np.ndarray | None = None,
    video_name: str = "vid.avi",
) -> SynthTruth:
    """Write one synthetic clip in the UBFC layout into ``out_dir``; returns its ground truth."""
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    packets, truth = generate_frames(config, image_bgr)
    written = write_video(out_dir / video_name, packets, fps=config.fps, codec=config.codec)
    log.info("wrote %d frames to %s", written, out_dir / video_name)
    write_ground_truth(out_dir, truth)
    return truth


def load_truth(directory: str | Path) -> SynthTruth:
    """Read ``truth.json`` written by :func:`make_clip`."""
    return SynthTruth(**json.loads((Path(directory) / "truth.json").read_text()))
