"""Labelled face images stored as a folder per class (FER2013 and CK+ exports), for evaluation and fitting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from smartmirror.emotion.labels import FER_LABELS, normalize_label

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def load_folder_per_class(root: str | Path) -> tuple[list[np.ndarray], np.ndarray, dict[str, int]]:
    """(grey uint8 images, label indices into FER_LABELS, {left-out class folder: count}) from ``root/<class>/*``.

    Class folder names are normalised ("anger" -> "angry", ...); classes outside the FER classes (CK+'s
    "contempt") are left out and counted. Files are read in sorted order.

    Raises
    ------
    ValueError
        Not a folder, an unreadable image, or no image of a FER class.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"not a folder: {root}")
    images, labels, skipped = [], [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = normalize_label(folder.name)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if label not in FER_LABELS:
            skipped[folder.name] = len(files)
            continue
        for path in files:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"unreadable image: {path}")
            images.append(image)
            labels.append(FER_LABELS.index(label))
    if not images:
        raise ValueError(f"no images of the FER classes under {root}")
    return images, np.asarray(labels), skipped
