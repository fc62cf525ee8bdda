"""The SpO2 Tiny Transformer: a regressor over ROI colour traces, with its training recipe.

Architecture: 4 pre-norm encoder layers, 2 attention heads, d_model 32, dropout and DropPath, a
learned position embedding, mean pooling, a linear head. Training: z-scored features and targets, MSE,
AdamW (lr 3e-4, weight decay), gradient clipping, early stopping on a validation split, and four
augmentations: time masking, feature masking, jitter and time shift.

**Ships untrained.** No weights are bundled; the report's SpO2 uses the calibrated ratio of ratios
(:mod:`smartmirror.vitals.spo2`). ``smartmirror train spo2 DATA_DIR`` (:mod:`smartmirror.vitals.spo2_data`)
trains it on clips with reference oximeter readings and writes a model file that is used only where it is
passed (``TrainedSpO2Model.load(path).predict(...)``). The tests train it on synthetic traces and synthetic
clips, whose ratio of ratios follows an assumed linear law: a model trained on them learns that law, not physiology.
Train on real paired recordings before trusting it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

MAX_T = 200          # longest sequence (frames), as in the published recipe
#: Format tag of saved models.
CHECKPOINT_FORMAT = "smartmirror-spo2-transformer-v1"
D_MODEL = 32
N_HEADS = 2
N_LAYERS = 4


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample with probability ``p`` while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1)), device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + MLP, each branch with dropout and DropPath."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * d_model, d_model), nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        y = self.norm1(x)
        y, _ = self.attention(y, y, y, key_padding_mask=padding, need_weights=False)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TinyTransformer(nn.Module):
    """SpO2 (z-scored) from a (batch, time, features) colour trace."""

    def __init__(self, n_features: int, d_model: int = D_MODEL, n_heads: int = N_HEADS, n_layers: int = N_LAYERS,
                 max_t: int = MAX_T, dropout: float = 0.1, drop_path: float = 0.1):
        super().__init__()
        self.n_features = n_features
        self.max_t = max_t
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(1, max_t, d_model))
        nn.init.trunc_normal_(self.position, std=0.02)
        rates = np.linspace(0.0, drop_path, n_layers)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, n_heads, dropout, float(r)) for r in rates)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (batch, time <= max_t, features); ``padding``: (batch, time) True where padded."""
        h = self.embed(x) + self.position[:, : x.shape[1]]
        for block in self.blocks:
            h = block(h, padding)
        h = self.norm(h)
        if padding is None:
            pooled = h.mean(dim=1)
        else:
            keep = (~padding).unsqueeze(-1).float()
            pooled = (h * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The training augmentations on a (batch, time, features) tensor: jitter, time shift, time and feature masks."""
    x = batch.clone()
    n, length, features = x.shape
    x = x + 0.05 * torch.randn(x.shape, generator=generator)                        # jitter (z-scored units)
    shifts = torch.randint(-length // 10, length // 10 + 1, (n,), generator=generator)
    x = torch.stack([torch.roll(x[i], int(shifts[i]), dims=0) for i in range(n)])   # time shift
    for i in range(n):
        width = int(torch.randint(0, length // 8 + 1, (1,), generator=generator))
        start = int(torch.randint(0, length - width + 1, (1,), generator=generator))
        x[i, start:start + width] = 0.0                                              # time mask
        if torch.rand(1, generator=generator) < 0.3:
            x[i, :, int(torch.randint(0, features, (1,), generator=generator))] = 0.0  # feature mask
    return x


@dataclass
class TrainedSpO2Model:
    """A trained regressor with its normalisation (predict in percent with :meth:`predict`)."""

    model: TinyTransformer
    feature_mean: np.ndarray
    feature_std: np.ndarray
    target_mean: float
    target_std: float
    history: list[dict] = field(default_factory=list)
    trained_on: str = "arrays given to train_spo2_transformer (no data folder recorded)"

    def predict(self, features: np.ndarray) -> np.ndarray:
        """SpO2 in percent for (n, time, features) traces (time <= MAX_T)."""
        x = (np.asarray(features, dtype=np.float32) - self.feature_mean) / self.feature_std
        self.model.eval()
        with torch.no_grad():
            z = self.model(torch.from_numpy(x.astype(np.float32))).numpy()
        return z * self.target_std + self.target_mean

    def save(self, path: str | Path) -> None:
        """Write the weights and normalisation (tensors only: loadable with ``weights_only=True``)."""
        torch.save({"format": CHECKPOINT_FORMAT, "state": self.model.state_dict(), "n_features": self.model.n_features,
                    "feature_mean": torch.as_tensor(self.feature_mean, dtype=torch.float32),
                    "feature_std": torch.as_tensor(self.feature_std, dtype=torch.float32),
                    "target_mean": float(self.target_mean), "target_std": float(self.target_std),
                    "trained_on": self.trained_on, "history": self.history}, path)

    @classmethod
    def load(cls, path: str | Path) -> TrainedSpO2Model:
        """A model written by :meth:`save` (``smartmirror train spo2``).

        Raises
        ------
        FileNotFoundError, ValueError
            Missing file, or not an SpO2 model file.
        """
        if not Path(path).is_file():
            raise FileNotFoundError(f"SpO2 model not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt, or a pickle of something else
            raise ValueError(f"{path} is not a readable SpO2 model: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a SmartMirror SpO2 model (format {CHECKPOINT_FORMAT!r})")
        model = TinyTransformer(int(data["n_features"]))
        model.load_state_dict(data["state"])
        model.eval()
        return cls(model, data["feature_mean"].numpy(), data["feature_std"].numpy(), float(data["target_mean"]),
                   float(data["target_std"]), history=list(data.get("history", [])), trained_on=data["trained_on"])


def train_spo2_transformer(
    features: np.ndarray, spo2_percent: np.ndarray, *, epochs: int = 200, batch_size: int = 32, lr: float = 3e-4,
    weight_decay: float = 0.05, patience: int = 40, validation_fraction: float = 0.2, seed: int = 0,
) -> TrainedSpO2Model:
    """Train the Tiny Transformer with AdamW, augmentations and early stopping on a validation split.

    Parameters
    ----------
    features : ndarray, shape (n, time <= MAX_T, n_features)
        Colour traces.
    spo2_percent : ndarray, shape (n,)
        Targets, percent.
    epochs, batch_size, lr, weight_decay, patience : training settings (defaults 200, 32, 3e-4, AdamW, 40).

    Raises
    ------
    ValueError
        For mismatched shapes, sequences longer than MAX_T, or fewer than 10 samples.
    """
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(spo2_percent, dtype=np.float32)
    if x.ndim != 3 or len(x) != len(y):
        raise ValueError("features must be (n, time, features) with one target per trace")
    if x.shape[1] > MAX_T:
        raise ValueError(f"sequences are limited to {MAX_T} frames, got {x.shape[1]}")
    if len(x) < 10:
        raise ValueError("training needs at least 10 traces")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(2, int(round(validation_fraction * len(x))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    feature_mean = x[train_idx].mean(axis=(0, 1))
    feature_std = x[train_idx].std(axis=(0, 1)) + 1e-8
    target_mean, target_std = float(y[train_idx].mean()), float(y[train_idx].std() + 1e-8)
    xz = torch.from_numpy((x - feature_mean) / feature_std)
    yz = torch.from_numpy((y - target_mean) / target_std)
    model = TinyTransformer(x.shape[2])
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.MSELoss()
    best_loss, best_state, waited = math.inf, copy.deepcopy(model.state_dict()), 0
    history = []
    for epoch in range(epochs):
        model.train()
        permutation = torch.from_numpy(np.random.default_rng(seed + epoch).permutation(train_idx))
        train_loss = 0.0
        for start in range(0, len(permutation), batch_size):
            batch = permutation[start:start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(augment(xz[batch], generator)), yz[batch])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            train_loss += float(loss.detach()) * len(batch)
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(xz[val_idx]), yz[val_idx]))
        history.append({"epoch": epoch + 1, "train_loss": train_loss / len(train_idx), "val_loss": val_loss})
        if val_loss < best_loss - 1e-5:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TrainedSpO2Model(model, feature_mean, feature_std, target_mean, target_std, history)
