"""Train an emotion model (NovelEmotionModel's recipe) on a folder-per-class or AffectNet-YOLO dataset, resumably.

Recipe: Adam (lr 1e-4, weight decay 1e-5), cross-entropy with inverse-frequency class weights,
ReduceLROnPlateau on the validation loss (factor 0.5, patience 2), batch 16, ~15 epochs with early stopping,
inputs normalised with mean 0.5 / std 0.5, automatic mixed precision on a GPU, and the augmentations of
``smartmirror.emotion.augment``. Models with valence/arousal heads also regress the circumplex point of the
label (mean-squared error, weight 0.5), and their router's gate learns the label's arousal sign (binary
cross-entropy, weight 0.1), which biases one expert to high-arousal and the other to low-arousal classes.

Every epoch writes ``OUT/last.pt`` (model, optimiser, scheduler, scaler, history: resume from it) and, when the
validation loss improves, ``OUT/best.pt``; both load with ``smartmirror.emotion.catalog.load_model(path)``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.emotion.catalog import create_model
from smartmirror.emotion.data import DatasetError, DatasetIndex, FaceDataset, discover_dataset
from smartmirror.emotion.labels import circumplex_matrix
from smartmirror.emotion.model import CHECKPOINT_FORMAT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults: the recipe of the EfficientNet-B3 NovelEmotionModel).

    ``backbone`` and ``image_size`` override the model's timm backbone and square input side (e.g. the tiny
    ``test_efficientnet`` at 64 px for quick runs). ``max_batches_per_epoch`` caps an epoch (None: all).
    """

    model: str = "novel_emotion_b3"
    backbone: str | None = None
    image_size: int | None = None
    epochs: int = 15
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 1e-5
    lr_factor: float = 0.5
    lr_patience: int = 2
    early_stopping_patience: int = 5
    val_fraction: float = 0.15
    valence_arousal_weight: float = 0.5
    gate_weight: float = 0.1
    augment: bool = True
    num_workers: int = 0
    seed: int = 0
    max_batches_per_epoch: int | None = None

    def validate(self) -> None:
        """Raise ValueError on settings that cannot train."""
        checks = {
            "epochs >= 1": self.epochs >= 1,
            "batch_size >= 1": self.batch_size >= 1,
            "lr > 0": self.lr > 0,
            "weight_decay >= 0": self.weight_decay >= 0,
            "0 < lr_factor < 1": 0 < self.lr_factor < 1,
            "num_workers >= 0": self.num_workers >= 0,
            "image_size >= 32": self.image_size is None or self.image_size >= 32,
            "0 <= val_fraction < 1": 0 <= self.val_fraction < 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid training settings: {', '.join(failed)}")


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    history: list[dict[str, float]]
    best_checkpoint: Path
    last_checkpoint: Path
    labels: tuple[str, ...]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    resumed_from_epoch: int = 0
    class_counts: list[int] = field(default_factory=list)


def class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * n_c)`` (classes with no samples get 0)."""
    counts_array = np.asarray(counts, dtype=np.float64)
    present = counts_array > 0
    weights = np.zeros_like(counts_array)
    weights[present] = counts_array.sum() / (present.sum() * counts_array[present])
    return torch.tensor(weights, dtype=torch.float32)


def emotion_loss(
    outputs: torch.Tensor | dict[str, torch.Tensor],
    targets: torch.Tensor,
    weights: torch.Tensor,
    circumplex: torch.Tensor,
    config: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted cross-entropy (+ valence/arousal MSE and gate BCE for multi-head models); returns (loss, parts)."""
    heads = outputs if isinstance(outputs, dict) else {"logits": outputs}
    cross_entropy = F.cross_entropy(heads["logits"].float(), targets, weight=weights)
    loss, parts = cross_entropy, {"ce": float(cross_entropy.detach())}
    point = circumplex[targets]  # (n, 2) valence, arousal of each label
    if "valence" in heads and "arousal" in heads:
        regression = F.mse_loss(heads["valence"].float(), point[:, 0]) + F.mse_loss(
            heads["arousal"].float(), point[:, 1]
        )
        loss = loss + config.valence_arousal_weight * regression
        parts["va_mse"] = float(regression.detach())
    if "gate" in heads:
        high_arousal = (point[:, 1] > 0).float()
        gate = heads["gate"][:, 0].float().clamp(1e-6, 1 - 1e-6)
        routing = F.binary_cross_entropy(gate, high_arousal)
        loss = loss + config.gate_weight * routing
        parts["gate_bce"] = float(routing.detach())
    return loss, parts


def _save(payload: dict[str, Any], path: Path) -> None:
    """Write atomically (a crash never leaves half a checkpoint)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _build_model(config: TrainConfig, labels: tuple[str, ...]) -> nn.Module:
    size = config.image_size
    return create_model(config.model, labels=labels, input_size=size, backbone=config.backbone)


def _loaders(index: DatasetIndex, model: nn.Module, config: TrainConfig):
    from torch.utils.data import DataLoader

    cfg = model.cfg
    common = dict(size=cfg.input_size, channels=cfg.in_channels, mean=cfg.mean, std=cfg.std, seed=config.seed)
    train_set = FaceDataset(index.train, augment=config.augment, **common)
    val_set = FaceDataset(index.val, augment=False, **common)
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=config.num_workers,
        drop_last=len(train_set) % config.batch_size == 1,  # a batch of one breaks batch norm
        generator=generator,
    )
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers)
    return train_set, train_loader, val_loader, generator


def evaluate(
    model: nn.Module,
    loader,
    weights: torch.Tensor,
    circumplex: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Validation loss, accuracy and balanced accuracy (mean per-class recall)."""
    model.eval()
    total_loss, total, correct = 0.0, 0, 0
    n_classes = len(weights)
    hits, seen = np.zeros(n_classes), np.zeros(n_classes)
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                outputs = model(images)
            loss, _ = emotion_loss(outputs, targets, weights, circumplex, config)
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs
            predicted = logits.argmax(dim=1)
            total_loss += float(loss) * len(targets)
            total += len(targets)
            correct += int((predicted == targets).sum())
            for target, guess in zip(targets.tolist(), predicted.tolist(), strict=True):
                seen[target] += 1
                hits[target] += target == guess
    recall = hits[seen > 0] / seen[seen > 0]
    return {
        "val_loss": total_loss / max(total, 1),
        "val_accuracy": correct / max(total, 1),
        "val_balanced_accuracy": float(recall.mean()) if len(recall) else 0.0,
    }


def train_emotion(
    data_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | None = None,
    resume: bool = True,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train (or resume training) an emotion model on a dataset folder.

    Parameters
    ----------
    data_dir : path
        Folder-per-class or AffectNet-YOLO dataset (see ``smartmirror.emotion.data``).
    out_dir : path
        Where ``last.pt`` and ``best.pt`` go.
    config : TrainConfig
        Model and recipe.
    device : str or None
        "cuda", "cpu", ...; None picks CUDA when available.
    resume : bool
        Continue from ``out_dir/last.pt`` when it exists (same model and labels required).
    progress : bool
        Show a progress bar per epoch (on stderr).
    on_epoch : callable, optional
        Called with each epoch's history row.

    Raises
    ------
    DatasetError
        Unusable dataset (message says why).
    ValueError
        Invalid settings, or a checkpoint in ``out_dir`` from a different model or label set.
    """
    from tqdm.auto import tqdm

    config.validate()
    index = discover_dataset(data_dir, val_fraction=config.val_fraction, seed=config.seed)
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    use_amp = torch_device.type == "cuda"
    torch.manual_seed(config.seed)

    model = _build_model(config, index.labels).to(torch_device)
    counts = index.class_counts("train")
    weights = class_weights(counts).to(torch_device)
    circumplex = torch.tensor(circumplex_matrix(index.labels), dtype=torch.float32, device=torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
    )
    scaler = torch.amp.GradScaler(torch_device.type, enabled=use_amp)
    history: list[dict[str, float]] = []
    best_val_loss, best_epoch, stale_epochs, start_epoch = math.inf, 0, 0, 1

    if resume and last_path.exists():
        state = torch.load(last_path, map_location=torch_device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise ValueError(f"{last_path} is not a resumable emotion checkpoint; use another --out or --no-resume")
        if state["model_name"] != config.model or tuple(state["cfg"]["labels"]) != index.labels:
            raise ValueError(
                f"{last_path} was trained as {state['model_name']} on {tuple(state['cfg']['labels'])}, not "
                f"{config.model} on {index.labels}; use another --out or --no-resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = list(state["history"])
        best_val_loss, best_epoch = state["best_val_loss"], state["best_epoch"]
        stale_epochs, start_epoch = state["stale_epochs"], state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"].cpu())
        log.info("resuming %s from epoch %d", last_path, state["epoch"])
    resumed_from = start_epoch - 1

    train_set, train_loader, val_loader, shuffle_generator = _loaders(index, model, config)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "model_name": config.model,
        "model_kwargs": getattr(model, "model_kwargs", {}),
        "cfg": {**asdict(model.cfg), "file": None},
        "train_config": asdict(config),
        "layout": index.layout,
    }
    stopped_early = stale_epochs >= config.early_stopping_patience
    for epoch in range(start_epoch, config.epochs + 1):
        if stopped_early:
            break
        started = time.perf_counter()
        train_set.epoch = epoch  # augmentation and shuffling depend on (seed, epoch) only: resuming is exact
        shuffle_generator.manual_seed(config.seed * 100_003 + epoch)
        model.train()
        running, batches = 0.0, 0
        n_batches = (
            len(train_loader)
            if config.max_batches_per_epoch is None
            else min(len(train_loader), config.max_batches_per_epoch)
        )
        bar = tqdm(total=n_batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, file=sys.stderr)
        for images, targets in train_loader:
            if batches >= n_batches:
                break
            images, targets = images.to(torch_device), targets.to(torch_device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(torch_device.type, dtype=torch.float16, enabled=use_amp):
                outputs = model(images)
            loss, _ = emotion_loss(outputs, targets, weights, circumplex, config)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)} at epoch {epoch}; lower the lr")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            running += float(loss.detach())
            batches += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / batches:.4f}")
        bar.close()
        metrics = evaluate(model, val_loader, weights, circumplex, config, torch_device)
        scheduler.step(metrics["val_loss"])
        row = {
            "epoch": epoch,
            "train_loss": running / max(batches, 1),
            **metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if metrics["val_loss"] < best_val_loss - 1e-6:
            best_val_loss, best_epoch, stale_epochs = metrics["val_loss"], epoch, 0
            _save({**meta, "model": model.state_dict(), "epoch": epoch, "history": history}, best_path)
        else:
            stale_epochs += 1
        stopped_early = stale_epochs >= config.early_stopping_patience
        _save(
            {
                **meta,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "history": history,
                "best_val_loss": best_val_loss,
                "best_epoch": best_epoch,
                "stale_epochs": stale_epochs,
                "torch_rng": torch.get_rng_state(),
            },
            last_path,
        )
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items()})
        if on_epoch is not None:
            on_epoch(row)
    if not best_path.exists():
        raise DatasetError("training produced no checkpoint (no epoch ran)")
    return TrainResult(
        history=history,
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        labels=index.labels,
        best_epoch=best_epoch,
        best_val_loss=float(best_val_loss),
        stopped_early=stopped_early and len(history) < config.epochs,
        resumed_from_epoch=resumed_from,
        class_counts=counts,
    )
