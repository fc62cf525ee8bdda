"""SmartMirror: emotion, fatigue, stress and rPPG vitals from a face video (a wellness demo, not a medical device).

The two-call pulse API is available at the top level and imported on first use, so ``import smartmirror`` stays
light: ``times, signal = smartmirror.extract_rppg_signal(video_path, method="pos", frames=None)`` and
``smartmirror.evaluate_dataset(path, method="pos")``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenCV reads its image-decoder pixel limit once, when it loads: cap it (default 2^30 pixels, ~3 GB a decode)
# before any part of SmartMirror imports cv2. The REST API also checks each image's size from its header first.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))

if TYPE_CHECKING:
    from smartmirror.vitals.evaluation import evaluate_dataset
    from smartmirror.vitals.video import extract_rppg_signal

__all__ = ["evaluate_dataset", "extract_rppg_signal"]

_LAZY = {
    "extract_rppg_signal": "smartmirror.vitals.video",
    "evaluate_dataset": "smartmirror.vitals.evaluation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smartmirror' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
