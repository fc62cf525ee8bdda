"""The drowsiness MLP: 5 features (:data:`~smartmirror.fatigue.features.MLP_FEATURE_NAMES`) -> hidden
layers of 32 and 16 -> P(drowsy); scikit-learn, saved with joblib.

Trained with ``smartmirror train fatigue DIR`` (:func:`train_mlp`, :func:`save_mlp`) and used only when its file is
passed explicitly (``FatigueAnalyzer(mlp_path=...)``, :func:`load_mlp`); the shipped default is the transparent
scoring of :mod:`smartmirror.fatigue.model`. A fitted MLP runs as plain numpy (:class:`FatigueMLP`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.fatigue.features import MLP_FEATURE_NAMES

log = logging.getLogger(__name__)

MLP_FORMAT = "smartmirror.fatigue_mlp/1"
MLP_CLASSES = ("non_drowsy", "drowsy")


class FatigueModelError(Exception):
    """A fatigue model file that cannot be used (missing, unreadable, wrong content)."""


def build_mlp_pipeline(seed: int = 0, max_epochs: int = 200):
    """The drowsiness classifier: standardised 5-D features -> MLP (32, 16, ReLU, Adam, batch 64) -> 2 classes."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "mlp",
                MLPClassifier(
                    hidden_layer_sizes=(32, 16),
                    activation="relu",
                    solver="adam",
                    batch_size=64,
                    learning_rate_init=1e-3,
                    max_iter=max_epochs,
                    random_state=seed,
                ),
            ),
        ]
    )


@dataclass
class FatigueMLP:
    """A fitted drowsiness MLP with its input contract.

    Attributes
    ----------
    pipeline : sklearn estimator
        Anything with ``predict_proba`` on (n, 5) rows in :data:`MLP_FEATURE_NAMES` order.
    drowsy_column : int
        Column of ``predict_proba`` that is P(drowsy).
    metadata : dict
        What it was trained on, its held-out metrics, library versions.
    """

    pipeline: Any
    drowsy_column: int
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._fast = _numpy_forward(self.pipeline)

    def predict_drowsy(self, rows: np.ndarray) -> np.ndarray:
        """P(drowsy) for each row of an (n, 5) feature array (or one (5,) row -> shape (1,))."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if rows.shape[1] != len(MLP_FEATURE_NAMES):
            raise ValueError(f"expected {len(MLP_FEATURE_NAMES)} features {MLP_FEATURE_NAMES}, got {rows.shape[1]}")
        if self._fast is not None:
            return self._fast(rows)[:, self.drowsy_column]
        return np.asarray(self.pipeline.predict_proba(rows))[:, self.drowsy_column]


def _numpy_forward(pipeline: Any):
    """A plain-numpy forward pass for our StandardScaler + ReLU MLPClassifier (sklearn's per-call checks cost
    ~100 us, more than the whole analyzer); None for anything else."""
    try:
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    scaler, mlp = pipeline.steps[0][1], pipeline.steps[1][1]
    if not (isinstance(scaler, StandardScaler) and isinstance(mlp, MLPClassifier) and mlp.activation == "relu"):
        return None
    if not hasattr(mlp, "coefs_") or mlp.out_activation_ != "logistic" or len(mlp.classes_) != 2:
        return None
    mean = scaler.mean_ if scaler.with_mean else 0.0
    scale = scaler.scale_ if scaler.with_std else 1.0
    weights = [w.astype(np.float64) for w in mlp.coefs_]
    biases = [b.astype(np.float64) for b in mlp.intercepts_]

    def forward(rows: np.ndarray) -> np.ndarray:
        h = (rows - mean) / scale
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        z = np.clip(h @ weights[-1] + biases[-1], -500, 500)
        p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.column_stack([1.0 - p1, p1])

    return forward


def train_mlp(
    features: np.ndarray,
    drowsy: np.ndarray,
    *,
    seed: int = 0,
    max_epochs: int = 200,
    patience: int = 10,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    on_epoch=None,
) -> tuple[FatigueMLP, dict]:
    """Train the drowsiness MLP with its 70/15/15 split and early stopping on validation accuracy (ties broken by
    validation log-loss).

    Parameters
    ----------
    features : ndarray, shape (n, 5)
        Rows in :data:`MLP_FEATURE_NAMES` order.
    drowsy : ndarray, shape (n,)
        1 for drowsy, 0 for non-drowsy.
    seed : int
        Seed of the split, the weight initialisation and the batch order.
    max_epochs, patience : int
        Most epochs; stop when validation accuracy (or, at equal accuracy, log-loss) has not improved for
        ``patience`` epochs; the best epoch is kept.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, val_accuracy)`` after each epoch.

    Returns
    -------
    (FatigueMLP, dict)
        The model and its metrics: sample counts, best epoch, validation and held-out test accuracy.

    Raises
    ------
    ValueError
        Fewer than 5 samples of either class, or malformed arrays.
    """
    import copy

    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(drowsy).astype(int)
    if x.ndim != 2 or x.shape[1] != len(MLP_FEATURE_NAMES) or len(x) != len(y):
        raise ValueError(f"expected features (n, {len(MLP_FEATURE_NAMES)}) and labels (n,), got {x.shape}, {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("labels must be 0 (non-drowsy) or 1 (drowsy)")
    counts = np.bincount(y, minlength=2)
    if counts.min() < 5:
        raise ValueError(f"need at least 5 samples of each class, got non-drowsy {counts[0]}, drowsy {counts[1]}")
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y_rest, random_state=seed
    )
    pipeline = build_mlp_pipeline(seed=seed, max_epochs=max_epochs)
    scaler: StandardScaler = pipeline.named_steps["scale"].fit(x_train)
    mlp = pipeline.named_steps["mlp"]
    xs_train, xs_val = scaler.transform(x_train), scaler.transform(x_val)
    mlp.set_params(batch_size=min(mlp.batch_size, len(y_train)))
    best_accuracy, best_loss, best_epoch, best_mlp, since_best = -1.0, math.inf, 0, None, 0
    for epoch in range(1, max_epochs + 1):
        mlp.partial_fit(xs_train, y_train, classes=np.array([0, 1]))
        p_val = np.clip(mlp.predict_proba(xs_val)[:, 1], 1e-7, 1 - 1e-7)
        accuracy = float(((p_val >= 0.5) == y_val).mean())
        loss = float(-np.mean(y_val * np.log(p_val) + (1 - y_val) * np.log(1 - p_val)))
        if on_epoch is not None:
            on_epoch(epoch, accuracy)
        # better accuracy, or equal accuracy with a lower validation loss (small sets saturate accuracy at once)
        if accuracy > best_accuracy or (accuracy == best_accuracy and loss < best_loss - 1e-4):
            best_accuracy, best_loss, best_epoch, best_mlp, since_best = accuracy, loss, epoch, copy.deepcopy(mlp), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    pipeline.steps[1] = ("mlp", best_mlp)
    drowsy_column = int(np.flatnonzero(best_mlp.classes_ == 1)[0])
    model = FatigueMLP(pipeline=pipeline, drowsy_column=drowsy_column)
    p_test = model.predict_drowsy(x_test)
    predicted = (p_test >= 0.5).astype(int)
    recall = [float((predicted[y_test == k] == k).mean()) for k in (0, 1)]
    metrics = {
        "n_samples": int(len(y)),
        "n_drowsy": int(counts[1]),
        "n_non_drowsy": int(counts[0]),
        "n_train": int(len(y_train)),
        "n_val": int(len(y_val)),
        "n_test": int(len(y_test)),
        "best_epoch": best_epoch,
        "val_accuracy": best_accuracy,
        "test_accuracy": float((predicted == y_test).mean()),
        "test_balanced_accuracy": float(np.mean(recall)),
        "seed": seed,
    }
    return model, metrics


def save_mlp(model: FatigueMLP, path: str | Path, **metadata: Any) -> Path:
    """Write the model with joblib as a dict bundle (format, features, classes, metadata); returns the path."""
    import joblib
    import sklearn

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bundle = {
        "format": MLP_FORMAT,
        "pipeline": model.pipeline,
        "feature_names": list(MLP_FEATURE_NAMES),
        "classes": list(MLP_CLASSES),
        "drowsy_column": model.drowsy_column,
        "metadata": {**model.metadata, **metadata, "sklearn_version": sklearn.__version__},
    }
    joblib.dump(bundle, path)
    return path


def load_mlp(path: str | Path) -> FatigueMLP:
    """Read a fatigue MLP written by :func:`save_mlp` (or a bare scikit-learn ``fatigue_mlp.joblib``).

    joblib files are pickles: load only files you made or trust. A bare classifier is read with the
    Driver Drowsiness Dataset's label convention (class 0 = drowsy, 1 = non-drowsy).

    Raises
    ------
    FatigueModelError
        Missing or unreadable file, or content that is not a 5-input drowsiness classifier.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FatigueModelError(f"No fatigue model file at {path}")
    try:
        content = joblib.load(path)
    except Exception as exc:  # joblib raises many kinds (pickle, EOF, KeyError, ...) for a bad file
        raise FatigueModelError(f"{path.name} is not a readable joblib model ({exc.__class__.__name__})") from exc
    if isinstance(content, dict):
        if content.get("format") != MLP_FORMAT:
            raise FatigueModelError(
                f"{path.name} is not a SmartMirror fatigue model (format {content.get('format')!r})"
            )
        if tuple(content.get("feature_names", ())) != MLP_FEATURE_NAMES:
            raise FatigueModelError(
                f"{path.name} expects features {content.get('feature_names')}, not {MLP_FEATURE_NAMES}"
            )
        pipeline = content["pipeline"]
        drowsy_column = int(content["drowsy_column"])
        metadata = dict(content.get("metadata", {}))
    elif hasattr(content, "predict_proba"):
        pipeline = content
        classes = list(getattr(content, "classes_", []))
        if 0 not in classes or len(classes) != 2:
            raise FatigueModelError(f"{path.name}: a bare classifier must have the classes [0, 1] (0 = drowsy)")
        drowsy_column = classes.index(0)  # Driver Drowsiness Dataset: Drowsy (0) vs Non-drowsy (1)
        metadata = {"source": "bare classifier (class 0 = drowsy)"}
        log.warning("%s: reading a bare classifier with the labels 0 = drowsy, 1 = non-drowsy", path.name)
    else:
        raise FatigueModelError(f"{path.name} holds a {type(content).__name__}, not a fatigue classifier")
    n_inputs = getattr(pipeline, "n_features_in_", len(MLP_FEATURE_NAMES))
    if n_inputs != len(MLP_FEATURE_NAMES):
        raise FatigueModelError(
            f"{path.name} expects {n_inputs} inputs, not the {len(MLP_FEATURE_NAMES)} fatigue features"
        )
    return FatigueMLP(pipeline=pipeline, drowsy_column=drowsy_column, metadata=metadata)
