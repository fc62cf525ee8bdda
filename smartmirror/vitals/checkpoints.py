"""Trained rPPG checkpoints (``smartmirror train rppg``): load, run, evaluate on a dataset, join the registry.

A ``resnet_tcn`` checkpoint outputs a pulse and can become a clip-report method (:func:`register_checkpoint`);
an ``ultralight`` one predicts a window's heart rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smartmirror.paths import user_cache_dir
from smartmirror.vitals.method_registry import PulseMethod, register_method
from smartmirror.vitals.neural import model_rate_slots, validate_frames
from smartmirror.vitals.training import TrainConfig, build_model
from smartmirror.vitals.training_data import find_clips, prepare_clip, spectral_peak_bpm


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
    cache = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "rppg_training"
    rows = []
    for record in find_clips(dataset_dir):
        clip = prepare_clip(record, input_size=tuple(info["input_size"]), fps=info["fps"], crop=info["crop"],
                            cache_dir=cache)
        predicted = predict_heart_rate_bpm(model, info, clip.frames)
        rows.append({"name": clip.name, "hr_true_bpm": clip.hr_bpm, "hr_pred_bpm": predicted,
                     "hr_mae_bpm": abs(predicted - clip.hr_bpm)})
    return rows


def register_checkpoint(path: str | Path, name: str | None = None) -> PulseMethod:
    """Register a pulse checkpoint trained with ``smartmirror train rppg`` (arch ``resnet_tcn``) as a method.

    Raises
    ------
    ValueError
        When the checkpoint's network does not output a pulse (UltraLightNet outputs a heart rate).
    """
    model, info = load_trained(path)
    if info["arch"] != "resnet_tcn":
        raise ValueError(f"{path}: arch {info['arch']!r} predicts a heart rate, not a pulse; it cannot be a method")
    size = tuple(info["input_size"])

    def fn(frames_rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
        return trained_pulse(model, validate_frames(frames_rgb, size), sampling_rate=sampling_rate,
                             fps=info["fps"])

    method = PulseMethod(name=name or Path(path).stem, kind="frames", fn=fn, realtime=False,
                         description=f"ResNet-18 + temporal conv trained here ({Path(path).name})", input_size=size)
    return register_method(method)
