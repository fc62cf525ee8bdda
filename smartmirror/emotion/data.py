"""Emotion training data: find samples in a folder-per-class or AffectNet-YOLO layout; load and prepare them.

Layouts understood by :func:`discover_dataset`:

- folder per class: ``DIR/<class>/*.jpg`` (split at random into train/val), or ``DIR/train/<class>/...`` with
  ``DIR/val|valid|validation|test/<class>/...``;
- AffectNet-YOLO (Ultralytics): ``DIR/data.yaml`` with ``names``, ``DIR/<split>/images/*.jpg`` and
  ``DIR/<split>/labels/*.txt`` (lines ``class cx cy w h``, normalised), splits ``train`` and ``valid``/``val``
  (or ``test`` when no validation split exists); the face box is cropped with a 10 % margin (the largest box
  when an image has several).

Class names are normalised ("Anger" -> "angry", see ``labels.normalize_label``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smartmirror.emotion.augment import augment_face
from smartmirror.emotion.labels import EMOTION_LABELS, normalize_label

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
TRAIN_SPLITS = ("train", "training")
VAL_SPLITS = ("val", "valid", "validation", "test")
#: Margin around a YOLO face box, as a fraction of its side, on each side.
BOX_MARGIN = 0.1


class DatasetError(ValueError):
    """A training folder that cannot be used; the message says why."""


@dataclass(frozen=True)
class Sample:
    """One labelled image; ``box`` is the face (cx, cy, w, h) normalised to the image, or None for the whole."""

    path: Path
    label: int
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """Samples of a training folder, split into train and validation."""

    layout: str  # "folders" or "yolo"
    labels: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]

    def class_counts(self, split: str = "train") -> list[int]:
        """Samples per class (in label order) in a split."""
        counts = Counter(s.label for s in getattr(self, split))
        return [counts.get(i, 0) for i in range(len(self.labels))]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _ordered_labels(names: set[str]) -> tuple[str, ...]:
    """EMOTION_LABELS order for known classes, then the rest alphabetically."""
    return tuple([n for n in EMOTION_LABELS if n in names] + sorted(names - set(EMOTION_LABELS)))


def _find_split(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (root / name, root / name.capitalize(), root / name.upper()):
            if candidate.is_dir():
                return candidate
    return None


def _random_split(
    samples: list[Sample], val_fraction: float, seed: int
) -> tuple[tuple[Sample, ...], tuple[Sample, ...]]:
    """Stratified split: about ``val_fraction`` of each class (at least one when a class has 2+ samples)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted({s.label for s in samples}):
        members = [s for s in samples if s.label == label]
        order = rng.permutation(len(members))
        n_val = int(round(val_fraction * len(members)))
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return tuple(train), tuple(val)


def _folder_samples(split_dir: Path, label_index: dict[str, int]) -> list[Sample]:
    samples = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        label = normalize_label(class_dir.name)
        if label not in label_index:
            continue
        samples += [Sample(path, label_index[label]) for path in _images(class_dir)]
    return samples


def _discover_folders(root: Path, val_fraction: float, seed: int) -> DatasetIndex:
    train_dir = _find_split(root, TRAIN_SPLITS)
    val_dir = _find_split(root, VAL_SPLITS) if train_dir else None
    base = train_dir or root
    class_dirs = [p for p in base.iterdir() if p.is_dir() and _images(p)]
    if not class_dirs:
        raise DatasetError(
            f"no class folders with images in {base} (expected {base}/<class>/*.jpg or the AffectNet-YOLO layout)"
        )
    names = {normalize_label(p.name) for p in class_dirs}
    if val_dir is not None:
        names |= {normalize_label(p.name) for p in val_dir.iterdir() if p.is_dir() and _images(p)}
    labels = _ordered_labels(names)
    index = {name: i for i, name in enumerate(labels)}
    samples = _folder_samples(base, index)
    if val_dir is not None:
        train, val = tuple(samples), tuple(_folder_samples(val_dir, index))
    else:
        train, val = _random_split(samples, val_fraction, seed)
    return DatasetIndex("folders", labels, train, val)


def _yolo_names(root: Path) -> list[str]:
    import yaml

    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        path = root / name
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise DatasetError(f"cannot parse {path}: {exc}") from None
            names = data.get("names")
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names, key=int)]
            if isinstance(names, list) and names:
                return [str(n) for n in names]
            raise DatasetError(f"{path} has no 'names' list of classes")
    raise DatasetError(f"AffectNet-YOLO layout needs {root}/data.yaml with the class 'names'")


def _read_yolo_box(label_path: Path) -> tuple[int, tuple[float, float, float, float]] | None:
    """(class id, box) of the largest box in a YOLO label file, or None when it has none."""
    best = None
    for line in label_path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        try:
            class_id = int(float(parts[0]))
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except ValueError:
            continue
        if best is None or w * h > best[1][2] * best[1][3]:
            best = (class_id, (cx, cy, w, h))
    return best


def _yolo_split_samples(split_dir: Path, class_labels: list[str], index: dict[str, int]) -> list[Sample]:
    images_dir, labels_dir = split_dir / "images", split_dir / "labels"
    samples, skipped = [], 0
    for image_path in _images(images_dir):
        label_path = labels_dir / f"{image_path.stem}.txt"
        box = _read_yolo_box(label_path) if label_path.is_file() else None
        if box is None or not 0 <= box[0] < len(class_labels):
            skipped += 1
            continue
        samples.append(Sample(image_path, index[class_labels[box[0]]], box[1]))
    if skipped:
        log.warning("%s: skipped %d images without a usable label file", split_dir, skipped)
    return samples


def _discover_yolo(root: Path, val_fraction: float, seed: int) -> DatasetIndex:
    class_labels = [normalize_label(n) for n in _yolo_names(root)]
    labels = tuple(dict.fromkeys(class_labels))  # keep data.yaml order, merge aliases
    index = {name: i for i, name in enumerate(labels)}
    train_dir = _find_split(root, TRAIN_SPLITS)
    if train_dir is None or not (train_dir / "images").is_dir():
        train_dir = root if (root / "images").is_dir() else None
    if train_dir is None:
        raise DatasetError(f"AffectNet-YOLO layout: no {root}/train/images folder")
    samples = _yolo_split_samples(train_dir, class_labels, index)
    val_dir = _find_split(root, VAL_SPLITS)
    if val_dir is not None and (val_dir / "images").is_dir() and val_dir != train_dir:
        train, val = tuple(samples), tuple(_yolo_split_samples(val_dir, class_labels, index))
    else:
        train, val = _random_split(samples, val_fraction, seed)
    return DatasetIndex("yolo", labels, train, val)


def is_yolo_layout(root: Path) -> bool:
    """True when the folder looks like an Ultralytics/AffectNet-YOLO dataset."""
    has_yaml = any((root / n).is_file() for n in ("data.yaml", "data.yml", "dataset.yaml"))
    has_images = any((root / s / "images").is_dir() for s in (*TRAIN_SPLITS, *VAL_SPLITS)) or (root / "images").is_dir()
    return has_yaml or has_images


def discover_dataset(root: str | Path, val_fraction: float = 0.15, seed: int = 0) -> DatasetIndex:
    """Index a training folder (layout detected); raises DatasetError with the reason when unusable."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"training data folder not found: {root}")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    index = (
        _discover_yolo(root, val_fraction, seed)
        if is_yolo_layout(root)
        else _discover_folders(root, val_fraction, seed)
    )
    counts = index.class_counts("train")
    present = [label for label, n in zip(index.labels, counts, strict=True) if n > 0]
    if len(present) < 2:
        raise DatasetError(f"{root}: need training images of at least 2 classes, found {present or 'none'}")
    if not index.val:
        raise DatasetError(f"{root}: no validation images (add a val/ split or more images per class)")
    return index


def load_face_image(sample: Sample, size: tuple[int, int], channels: int) -> np.ndarray:
    """Read a sample, crop its face box (with margin, squared), resize to (h, w); grey (h, w) or RGB (h, w, 3)."""
    image = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {sample.path}")
    if sample.box is not None:
        height, width = image.shape[:2]
        cx, cy, w, h = sample.box
        side = max(w * width, h * height) * (1 + 2 * BOX_MARGIN)
        x0, y0 = int(round(cx * width - side / 2)), int(round(cy * height - side / 2))
        x1, y1 = int(round(cx * width + side / 2)), int(round(cy * height + side / 2))
        pad = max(0, -x0, -y0, x1 - width, y1 - height)
        if pad:
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
        image = image[y0:y1, x0:x1]
        if image.size == 0:
            raise DatasetError(f"empty face box in {sample.path}")
    out_h, out_w = size
    shrinking = image.shape[0] > out_h or image.shape[1] > out_w
    image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceDataset:
    """A torch-style dataset of (image tensor (C, H, W) float32, label int) with optional augmentation.

    Augmentation draws from ``np.random.default_rng((seed, epoch, index))``: reproducible, and different each
    epoch (set ``epoch`` before iterating).
    """

    def __init__(
        self,
        samples: tuple[Sample, ...],
        size: tuple[int, int],
        channels: int,
        mean: float = 0.5,
        std: float = 0.5,
        augment: bool = False,
        seed: int = 0,
    ):
        self.samples = samples
        self.size = size
        self.channels = channels
        self.mean = mean
        self.std = std
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        import torch

        sample = self.samples[index]
        image = load_face_image(sample, self.size, self.channels)
        if self.augment:
            image = augment_face(image, np.random.default_rng((self.seed, self.epoch, index)))
        pixels = (image.astype(np.float32) / 255.0 - self.mean) / self.std
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(pixels)), sample.label
