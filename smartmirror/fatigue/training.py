"""Training the drowsiness MLP on the Driver Drowsiness Dataset layout: images -> FaceMesh -> 5 features -> MLP.

The DDD (Kaggle, "Driver Drowsiness Dataset (DDD)") is a folder ``Drowsy`` and a folder ``Non Drowsy`` of
227x227 face crops. Any folder named like ``drowsy`` and ``non-drowsy`` / ``non_drowsy`` / ``Non Drowsy`` /
``notdrowsy`` (case and separators ignored) at most two levels below the given folder is accepted, and the images
below them are read (jpg, jpeg, png, bmp, webp).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.errors import CodedError
from smartmirror.face import FaceTracker
from smartmirror.fatigue.features import MLP_FEATURE_NAMES, fatigue_features
from smartmirror.fatigue.mlp import save_mlp, train_mlp

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
_CLASS_NAMES = {"drowsy": "drowsy", "nondrowsy": "non_drowsy", "notdrowsy": "non_drowsy"}


class DatasetError(CodedError):
    """A training folder that cannot be used; the message says what is missing."""

    code = "invalid_training_data"

    def __init__(self, message: str):
        super().__init__(None, message)


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def find_ddd_images(data_dir: str | Path, limit_per_class: int | None = None) -> dict[str, list[Path]]:
    """The images of each class, ``{"drowsy": [...], "non_drowsy": [...]}``, sorted by path.

    Raises
    ------
    DatasetError
        The folder does not exist, or either class folder is missing or holds no images.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"No such folder: {root}")
    folders: dict[str, list[Path]] = {"drowsy": [], "non_drowsy": []}
    candidates = [root, *(p for p in root.iterdir() if p.is_dir())]
    candidates += [q for p in candidates[1:] for q in p.iterdir() if q.is_dir()]
    for folder in candidates:
        label = _CLASS_NAMES.get(_normalise(folder.name))
        if label is not None:
            folders[label].append(folder)
    missing = [label for label, found in folders.items() if not found]
    if missing:
        raise DatasetError(
            f"{root} does not have the DDD layout: no folder for {', '.join(missing)} "
            "(expected folders named 'Drowsy' and 'Non Drowsy')"
        )
    images: dict[str, list[Path]] = {}
    for label, found in folders.items():
        files = sorted(
            {p for folder in found for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
        )
        if not files:
            raise DatasetError(f"The {label.replace('_', '-')} folder(s) {[str(f) for f in found]} hold no images")
        images[label] = files[:limit_per_class] if limit_per_class else files
    return images


def image_features(path: Path, tracker) -> np.ndarray | None:
    """The 5-D MLP features of one face photo, or None when it cannot be read or holds no face.

    Tight face crops (as in the DDD) are padded by a quarter of their size first: FaceMesh's detector needs some
    context around the face.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    height, width = image.shape[:2]
    border = max(8, int(0.25 * max(height, width)))
    fill = [float(v) for v in image.reshape(-1, 3).mean(axis=0)]
    padded = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=fill)
    face = tracker.process(padded)
    if face is None:
        return None
    return fatigue_features(face).mlp_vector()


def extract_features(
    images: dict[str, list[Path]], on_image: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Run FaceMesh (static-image mode) over every image.

    Returns
    -------
    (features (n, 5), drowsy labels (n,) with 1 = drowsy, skipped paths)
    """
    rows: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[Path] = []
    done = 0
    with FaceTracker(static_image_mode=True, max_num_faces=1) as tracker:
        for label, paths in images.items():
            for path in paths:
                vector = image_features(path, tracker)
                if vector is None or not np.isfinite(vector).all():
                    skipped.append(path)
                else:
                    rows.append(vector)
                    labels.append(1 if label == "drowsy" else 0)
                done += 1
                if on_image is not None:
                    on_image(done)
    features = np.array(rows, dtype=np.float64).reshape(-1, len(MLP_FEATURE_NAMES))
    return features, np.array(labels, dtype=int), skipped


def train_from_folder(
    data_dir: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    max_epochs: int = 200,
    limit_per_class: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_image: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train and save the drowsiness MLP from a DDD-layout folder; returns a JSON-able report.

    Raises
    ------
    DatasetError
        Bad layout, or too few images with a face in either class.
    """

    images = find_ddd_images(data_dir, limit_per_class)
    total = sum(len(paths) for paths in images.values())
    if on_total is not None:
        on_total(total)
    features, drowsy, skipped = extract_features(images, on_image)
    try:
        model, metrics = train_mlp(features, drowsy, seed=seed, max_epochs=max_epochs)
    except ValueError as exc:
        raise DatasetError(f"{exc} (after skipping {len(skipped)} of {total} images without a readable face)") from exc
    path = save_mlp(
        model,
        out,
        trained_on=str(Path(data_dir).resolve()),
        n_images=total,
        n_skipped=len(skipped),
        metrics=metrics,
    )
    return {
        "model_path": str(path),
        "images": total,
        "skipped_no_face": len(skipped),
        "features": list(MLP_FEATURE_NAMES),
        **metrics,
    }
