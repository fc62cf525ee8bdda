"""The bundled ``emotion_ensemble`` exported to ONNX (``weights/emotion_ensemble.onnx``), run by onnxruntime.

Made by ``scripts/export_emotion_onnx.py`` from the torch ensemble (batchnorm folded, as the torch predictor
runs it). The graph takes RGB faces (n, 3, 112, 112) float32 in [0, 1] (the ensemble's input, see
:class:`~smartmirror.emotion.ensemble.EmotionEnsemble`) and returns the learned combiner's logits (n, 7) for
that one view. The combiner is linear in the views' mean log-probabilities, so the flip pass (the face and its
mirror image) is the mean of the two views' logits: one graph serves ``flip=True`` (the face and its mirror
image in one batch) and ``flip=False``. The predictor's contract (labels, input size, channels, mean/std, face
scale, the flip default, the source files' sha256) is JSON in the graph's metadata under :data:`METADATA_KEY`.

Nothing here imports torch: a report or live session with the default model starts without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.emotion.cfg import ModelCfg
from smartmirror.emotion.spec import DEFAULT_MODEL, resolve_model_spec
from smartmirror.paths import WEIGHTS_DIR

#: The export of the default ensemble, under weights/.
ONNX_FILE = "emotion_ensemble.onnx"

#: Metadata key holding the predictor's contract (JSON).
METADATA_KEY = "smartmirror_emotion"

#: Format tag of that contract.
ONNX_FORMAT = "smartmirror-emotion-onnx-v1"


def onnx_path_for(spec: str | Path | None, device: str = "cpu") -> Path | None:
    """The ONNX export to run for model ``spec`` on ``device``, or None (torch runs it).

    Only the bundled default ensemble has an export, and only the CPU uses it (a GPU keeps torch).
    """
    if device != "cpu" or resolve_model_spec(spec) != DEFAULT_MODEL:
        return None
    path = WEIGHTS_DIR / ONNX_FILE
    return path if path.is_file() else None


class OnnxEmotionEnsemble:
    """The exported ensemble in an onnxruntime session: one intra-op thread, sequential, no spinning.

    Like the pulse network's session (``smartmirror.vitals.neural``), it never competes with the other
    analyzers' threads. Attributes ``cfg`` (:class:`ModelCfg`), ``flip`` (the mirror-image pass by default),
    ``meta`` (the metadata dict).

    Raises
    ------
    ValueError
        A graph without this project's emotion metadata, or of another format.
    """

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        meta: dict[str, Any] = json.loads(raw) if raw else {}
        if meta.get("format") != ONNX_FORMAT:
            raise ValueError(f"{self.path} is not a SmartMirror emotion export (format {ONNX_FORMAT!r})")
        self.meta = meta
        self.cfg = ModelCfg(
            file=self.path.name,
            input_size=tuple(int(s) for s in meta["input_size"]),
            in_channels=int(meta["in_channels"]),
            mean=float(meta["mean"]),
            std=float(meta["std"]),
            labels=tuple(meta["labels"]),
            face_scale=float(meta["face_scale"]),
        )
        self.flip = bool(meta["flip"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def logits(self, batch: np.ndarray, flip: bool | None = None) -> np.ndarray:
        """Prepared faces (n, 3, h, w) float32 -> the combiner's logits (n, classes) float32.

        ``flip`` (None: the export's default) averages each face's logits with its mirror image's, exactly the
        torch ensemble's flip pass (both views go through the graph in one run).
        """
        x = np.ascontiguousarray(batch, dtype=np.float32)
        n = len(x)
        flip = self.flip if flip is None else flip
        if flip:
            x = np.concatenate([x, x[..., ::-1]])
        (logits,) = self.session.run([self.output_name], {self.input_name: x})
        return 0.5 * (logits[:n] + logits[n:]) if flip else logits

    def probabilities(self, batch: np.ndarray, flip: bool | None = None) -> np.ndarray:
        """Prepared faces -> class probabilities (n, classes) float32 (softmax of :meth:`logits`)."""
        logits = self.logits(batch, flip)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
