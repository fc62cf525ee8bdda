"""SmartMirror: emotion, fatigue, stress and rPPG vitals from a face video (a wellness demo, not a medical device).

The two-call pulse API is available at the top level:
``times, signal = smartmirror.extract_rppg_signal(video_path, method="pos", frames=None)`` and
``smartmirror.evaluate_dataset(path, method="pos")``.

How packages expose their names (one rule everywhere): a package's ``__init__`` holds a docstring and plain
re-exports of names whose modules import no torch, MediaPipe or onnxruntime at module level; heavy names are
imported from their defining module (``smartmirror.emotion.catalog``, ``smartmirror.vitals.neural``, ...). Imports
between the project's modules sit at the top of each file. An import inside a function is kept only at the heavy
edge (torch, MediaPipe, onnxruntime, or the parts of a CLI command that ``smartmirror --help`` must not load),
with a comment saying why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# OpenCV reads its image-decoder pixel limit once, when it loads: cap it (default 2^30 pixels, ~3 GB a decode)
# before any part of SmartMirror imports cv2. The REST API also checks each image's size from its header first.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))
# OpenBLAS (numpy's BLAS) reads its thread count once, when it loads. The signal code multiplies small matrices,
# where a second BLAS thread only spin-waits: on a 30 s clip's vitals-only report it cost 4.6 s of system CPU out
# of 12.5 s, with no wall-clock gain (one thread: 8.6 s CPU, same wall). Set it before numpy loads; yours wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["evaluate_dataset", "extract_rppg_signal"]


def extract_rppg_signal(
    video_path: str | Path, method: str = "pos", frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The pulse signal of a face video: (times in seconds, pulse).

    See :func:`smartmirror.vitals.video.extract_rppg_signal`.
    """
    # Imported on call: every entry point imports this package, and `smartmirror --help` must not load numpy,
    # OpenCV and SciPy.
    from smartmirror.vitals.video import extract_rppg_signal as extract

    return extract(video_path, method=method, frames=frames)


def evaluate_dataset(
    path: str | Path, method: str | None = "pos", *, show: bool = True, cluster: Any = None
) -> dict[str, Any]:
    """Heart-rate and pulse accuracy over a dataset folder.

    See :func:`smartmirror.vitals.evaluation.evaluate_dataset`.
    """
    # Imported on call, as above.
    from smartmirror.vitals.evaluation import evaluate_dataset as evaluate

    return evaluate(path, method=method, show=show, cluster=cluster)
