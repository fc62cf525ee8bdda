"""Training the learned rPPG networks on a folder of clips with ground truth.

Pipeline: the dataset's clips prepared at the model's rate (:mod:`smartmirror.vitals.training_data`) -> windows
of ``window_frames`` -> the network.

- ``resnet_tcn`` (ResNet-18 + TCN): per-frame pulse; loss ``MSE(pulse) + 0.1 * MAE(heart rate)`` with both pulses
  standardised per window and the heart rate a differentiable spectral peak (softmax-weighted frequency).
- ``ultralight`` (UltraLightNet): the window's heart rate directly; loss MSE (bpm^2), validation MAE.

Checkpoints (``last.pt`` every epoch, ``best.pt`` at the best validation loss) hold the model, the optimiser,
the history and the configuration, so training resumes where it stopped; :mod:`smartmirror.vitals.checkpoints`
loads and runs them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from smartmirror.paths import user_cache_dir
from smartmirror.vitals.spectrum import HR_BAND_BPM
from smartmirror.vitals.training_data import PreparedClip, find_clips, prepare_clip, spectral_peak_bpm

log = logging.getLogger(__name__)

ARCHS = ("resnet_tcn", "ultralight")


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
