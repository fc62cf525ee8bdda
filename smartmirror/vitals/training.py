"""Training the learned rPPG networks on a folder of clips with ground truth.

Datasets: the UBFC-rPPG layout (``<subject>/vid.avi`` + ``<subject>/ground_truth.txt``) and the flat
layout (``name.avi`` + ``name.txt``); the text file has three lines: PPG samples, heart rate (bpm; optional,
ignored when it does not match), times in seconds. Any container FFmpeg reads is accepted for the video.

Pipeline: decode with true timestamps -> face crops (open-rppg's box from FaceMesh, or a centre crop as UltraLightNet
did) -> the model's fixed rate (nearest frame) -> windows of ``window_frames`` -> the network.

- ``resnet_tcn`` (ResNet-18 + TCN): per-frame pulse; loss ``MSE(pulse) + 0.1 * MAE(heart rate)`` with both pulses
  standardised per window and the heart rate a differentiable spectral peak (softmax-weighted frequency).
- ``ultralight`` (UltraLightNet): the window's heart rate directly; loss MSE (bpm^2), validation MAE.

Checkpoints (``last.pt`` every epoch, ``best.pt`` at the best validation loss) hold the model, the optimiser,
the history and the configuration, so training resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from smartmirror.frames import VIDEO_SUFFIXES

log = logging.getLogger(__name__)

ARCHS = ("resnet_tcn", "ultralight")
HR_BAND_BPM = (40.0, 200.0)


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


@dataclass
class TrainConfig:
    """Everything that shapes a training run (stored in every checkpoint)."""

    arch: str = "resnet_tcn"
    epochs: int = 30
    lr: float = 3e-4
    batch_size: int = 4
    window_frames: int = 300
    stride_frames: int | None = None   # default: half a window
    input_size: tuple[int, int] = (128, 128)
    width: int = 64                    # ResNet-18 first-stage channels (64 = the standard network)
    fps: float = 30.0
    crop: str = "face"                 # "face" (open-rppg box from FaceMesh) or "center" (UltraLightNet's)
    hr_loss_weight: float = 0.1
    val_fraction: float = 0.2
    seed: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """Where the checkpoints are and how each epoch went."""

    checkpoint: Path
    best_checkpoint: Path
    history: list[dict]


# --------------------------------------------------------------------------------------------- datasets


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
    from smartmirror.frames import read_video_packets
    from smartmirror.vitals.neural import crop_faces, model_rate_slots

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
            from smartmirror.face import FaceTracker

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


def _windows(clip: PreparedClip, length: int, stride: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    n = len(clip.frames)
    if n < length:
        return []
    starts = list(range(0, n - length + 1, stride))
    out = []
    for s in starts:
        ppg = clip.ppg[s:s + length]
        out.append((clip.frames[s:s + length], ppg, spectral_peak_bpm(ppg, clip.fps)))
    return out


# --------------------------------------------------------------------------------------------- models


def build_model(config: TrainConfig):
    """A fresh (randomly initialised) network for ``config.arch``."""
    from smartmirror.vitals.nets import ResNetTCN, UltraLightNet

    if config.arch == "resnet_tcn":
        return ResNetTCN(width=config.width)
    if config.arch == "ultralight":
        return UltraLightNet()
    raise ValueError(f"Unknown architecture {config.arch!r}; choose one of {', '.join(ARCHS)}")


def soft_heart_rate_bpm(pulse, fps: float, band_bpm: tuple[float, float] = HR_BAND_BPM, temperature: float = 0.05):
    """Differentiable heart rate (B,) in bpm: power-weighted mean frequency, sharpened by a softmax."""
    import torch

    pulse = pulse - pulse.mean(dim=-1, keepdim=True)
    n_fft = max(512, 1 << int(math.ceil(math.log2(pulse.shape[-1] * 4))))
    power = torch.fft.rfft(pulse, n=n_fft).abs() ** 2
    freqs_bpm = torch.fft.rfftfreq(n_fft, 1 / fps, device=pulse.device) * 60
    inside = (freqs_bpm >= band_bpm[0]) & (freqs_bpm <= band_bpm[1])
    power, freqs_bpm = power[:, inside], freqs_bpm[inside]
    weights = torch.softmax(power / (power.amax(dim=-1, keepdim=True) + 1e-8) / temperature, dim=-1)
    return (weights * freqs_bpm).sum(dim=-1)


def _standardise(x):
    return (x - x.mean(dim=-1, keepdim=True)) / (x.std(dim=-1, keepdim=True) + 1e-6)


def _batch_loss(model, config: TrainConfig, frames, ppg, hr):
    """(loss, heart-rate absolute errors) of one batch."""
    import torch

    if config.arch == "ultralight":
        predicted = model(frames)
        return torch.mean((predicted - hr) ** 2), (predicted - hr).abs().detach()
    pulse = model(frames)
    predicted_hr = soft_heart_rate_bpm(pulse, config.fps)
    loss = torch.mean((_standardise(pulse) - _standardise(ppg)) ** 2)
    hr_error = (predicted_hr - hr).abs()
    return loss + config.hr_loss_weight * hr_error.mean(), hr_error.detach()


def _to_tensors(batch, device):
    import torch

    frames = torch.from_numpy(np.stack([b[0] for b in batch])).to(device)
    frames = frames.permute(0, 1, 4, 2, 3).float() / 255.0
    ppg = torch.tensor(np.stack([b[1] for b in batch]), dtype=torch.float32, device=device)
    hr = torch.tensor([b[2] for b in batch], dtype=torch.float32, device=device)
    return frames, ppg, hr


def _save_atomic(obj, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train_rppg(
    dataset_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = True,
    device: str | None = None,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train ``config.arch`` on a dataset folder; checkpoints go to ``out_dir`` (``last.pt``, ``best.pt``).

    Parameters
    ----------
    dataset_dir : path
        UBFC-style or flat clip + .txt folder (see :func:`find_clips`).
    out_dir : path
        Checkpoint folder; with ``resume`` an existing ``last.pt`` there is continued up to ``config.epochs``.
    config : TrainConfig
        Architecture and hyper-parameters (defaults: the ResNet-18 + TCN pulse network, 300-frame windows).
    device : str, optional
        "cuda" / "cpu"; default the GPU when there is one.
    cache_dir : path, optional
        Where decoded crops are cached (default: the user cache folder).
    threads : int, optional
        CPU threads for PyTorch during this run (restored afterwards); on a busy machine 1 is fastest.

    Raises
    ------
    ValueError
        For a bad configuration, a checkpoint of a different configuration, or clips shorter than a window.
    """
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(dataset_dir, out_dir, config or TrainConfig(), resume=resume, device=device,
                      progress=progress, cache_dir=cache_dir, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(previous_threads)


def _train(dataset_dir, out_dir, config: TrainConfig, *, resume, device, progress, cache_dir, on_epoch
           ) -> TrainResult:
    import torch
    from tqdm.auto import tqdm

    from smartmirror.paths import user_cache_dir

    if config.arch not in ARCHS:
        raise ValueError(f"Unknown architecture {config.arch!r}; choose one of {', '.join(ARCHS)}")
    if config.epochs < 1 or config.batch_size < 1 or config.window_frames < 8:
        raise ValueError("epochs and batch_size must be >= 1 and window_frames >= 8")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "rppg_training"
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    records = find_clips(dataset_dir)
    clips = [prepare_clip(r, input_size=tuple(config.input_size), fps=config.fps, crop=config.crop,
                          cache_dir=cache) for r in records]
    n_val = int(round(len(clips) * config.val_fraction)) if len(clips) > 1 else 0
    order = rng.permutation(len(clips))
    val_clips = [clips[i] for i in order[:n_val]]
    train_clips = [clips[i] for i in order[n_val:]]
    stride = config.stride_frames or max(1, config.window_frames // 2)
    train_windows = [w for c in train_clips for w in _windows(c, config.window_frames, stride)]
    val_windows = [w for c in (val_clips or train_clips) for w in _windows(c, config.window_frames,
                                                                          config.window_frames)]
    if not train_windows:
        raise ValueError(f"no clip is as long as a window ({config.window_frames} frames at {config.fps:g} fps)")

    model = build_model(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    last, best = out_dir / "last.pt", out_dir / "best.pt"
    history: list[dict] = []
    start_epoch = 0
    if resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        saved = {k: v for k, v in state["config"].items() if k not in ("epochs",)}
        current = {k: v for k, v in asdict(config).items() if k not in ("epochs",)}
        saved["input_size"], current["input_size"] = tuple(saved["input_size"]), tuple(current["input_size"])
        if saved != current:
            raise ValueError(f"{last} was trained with another configuration; use another out_dir or resume=False")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        history, start_epoch = state["history"], state["epoch"]
        log.info("resuming %s at epoch %d", last, start_epoch + 1)
    best_val = min((h["val_loss"] for h in history), default=math.inf)

    info = {"arch": config.arch, "input_size": list(config.input_size), "fps": config.fps,
            "window_frames": config.window_frames, "width": config.width, "crop": config.crop}
    for epoch in range(start_epoch, config.epochs):
        model.train()
        perm = np.random.default_rng(config.seed + epoch).permutation(len(train_windows))
        batches = [perm[i:i + config.batch_size] for i in range(0, len(perm), config.batch_size)]
        losses = []
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
        for index in bar:
            frames, ppg, hr = _to_tensors([train_windows[i] for i in index], device)
            loss, _ = _batch_loss(model, config, frames, ppg, hr)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        val_loss, val_mae = _evaluate_windows(model, config, val_windows, device)
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                  "val_hr_mae_bpm": val_mae}
        history.append(record)
        state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "epoch": epoch + 1,
                 "history": history, "config": asdict(config), "info": info}
        _save_atomic(state, last)
        if val_loss <= best_val:
            best_val = val_loss
            _save_atomic(state, best)
        if progress:
            tqdm.write(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f}, val loss {val_loss:.4f}, "
                       f"val HR MAE {val_mae:.2f} bpm")
        if on_epoch is not None:
            on_epoch(record)
    if not best.exists():
        _save_atomic(torch.load(last, weights_only=False), best)
    return TrainResult(last, best, history)


def _evaluate_windows(model, config: TrainConfig, windows, device) -> tuple[float, float]:
    import torch

    model.eval()
    losses, errors = [], []
    with torch.no_grad():
        for i in range(0, len(windows), config.batch_size):
            frames, ppg, hr = _to_tensors(windows[i:i + config.batch_size], device)
            loss, err = _batch_loss(model, config, frames, ppg, hr)
            losses.append(float(loss) * len(err))
            errors.extend(err.cpu().tolist())
    return float(np.sum(losses) / max(len(errors), 1)), float(np.mean(errors)) if errors else math.nan


# ----------------------------------------------------------------------------------- trained checkpoints


def load_trained(path: str | Path):
    """A checkpoint written by :func:`train_rppg`: (model in eval mode on the CPU, info dict).

    Raises
    ------
    FileNotFoundError, ValueError
        When the file is missing or is not such a checkpoint.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path} is not a checkpoint written by smartmirror train rppg")
    config = TrainConfig(**{**state["config"], "input_size": tuple(state["config"]["input_size"])})
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.eval(), state["info"]


def trained_pulse(model, frames_rgb: np.ndarray, *, sampling_rate: float, fps: float) -> np.ndarray:
    """Pulse (n,) of a ``resnet_tcn`` model over face crops (n, h, w, 3) uint8 RGB at ``sampling_rate``."""
    import torch

    from smartmirror.vitals.neural import model_rate_slots

    slots = model_rate_slots(len(frames_rgb), sampling_rate, fps)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(frames_rgb[slots])).permute(0, 3, 1, 2).float()[None] / 255.0
        pulse = model(x)[0].double().numpy()
    return np.interp(np.arange(len(frames_rgb)) / sampling_rate, np.arange(len(slots)) / fps, pulse)


def predict_heart_rate_bpm(model, info: dict, frames_rgb: np.ndarray) -> float:
    """Heart rate (bpm) of one clip of crops at the model's rate: the spectral peak of the pulse
    (``resnet_tcn``) or the mean of the per-window predictions (``ultralight``)."""
    import torch

    if info["arch"] == "resnet_tcn":
        return spectral_peak_bpm(trained_pulse(model, frames_rgb, sampling_rate=info["fps"], fps=info["fps"]),
                                 info["fps"])
    length = min(info["window_frames"], len(frames_rgb))
    starts = range(0, len(frames_rgb) - length + 1, max(1, length // 2))
    with torch.inference_mode():
        windows = np.stack([frames_rgb[s:s + length] for s in starts])
        x = torch.from_numpy(windows).permute(0, 1, 4, 2, 3).float() / 255.0
        return float(model(x).mean())


def evaluate_heart_rate(model, info: dict, dataset_dir: str | Path, *, cache_dir: str | Path | None = None
                        ) -> list[dict]:
    """Per-clip heart-rate error of a trained model on a dataset folder: [{name, hr_true_bpm, hr_pred_bpm,
    hr_mae_bpm}]."""
    from smartmirror.paths import user_cache_dir

    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "rppg_training"
    rows = []
    for record in find_clips(dataset_dir):
        clip = prepare_clip(record, input_size=tuple(info["input_size"]), fps=info["fps"], crop=info["crop"],
                            cache_dir=cache)
        predicted = predict_heart_rate_bpm(model, info, clip.frames)
        rows.append({"name": clip.name, "hr_true_bpm": clip.hr_bpm, "hr_pred_bpm": predicted,
                     "hr_mae_bpm": abs(predicted - clip.hr_bpm)})
    return rows
