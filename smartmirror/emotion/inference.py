"""Run an emotion model on face images: input checks, preprocessing by the model's cfg, batched inference.

The default ensemble on CPU runs from its ONNX export (``onnx_model``, onnxruntime) when ``weights/`` holds it:
then torch is never imported. Other models, GPUs and training use torch and the networks (``model``,
``faceapi``, ``ensemble``), imported when a predictor first loads its model, so this module and the analyzer
built on it import without torch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smartmirror.emotion.crop import crop_face
from smartmirror.emotion.onnx_model import OnnxEmotionEnsemble, onnx_path_for
from smartmirror.face import FaceObservation

log = logging.getLogger(__name__)

#: Smallest face image side accepted by predict_image, in pixels.
MIN_FACE_IMAGE_PX = 8


@dataclass(frozen=True)
class EmotionPrediction:
    """One face's model output.

    Attributes
    ----------
    probabilities : dict of str to float
        Softmax over the model's labels (sums to 1).
    valence, arousal : float or None
        The model's own regression heads in [-1, 1], when it has them (None for the FER model).
    """

    probabilities: dict[str, float]
    valence: float | None = None
    arousal: float | None = None

    @property
    def label(self) -> str:
        """The most probable class."""
        return max(self.probabilities, key=self.probabilities.__getitem__)


def as_face_array(face_image: np.ndarray | str | Path) -> np.ndarray:
    """Validate a face image and return it as uint8 grey (h, w) or BGR (h, w, 3).

    Accepts a path (read with OpenCV), grey (h, w) or (h, w, 1), BGR (h, w, 3) or BGRA (h, w, 4); uint8, or float
    in [0, 1] (or [0, 255] when the maximum exceeds 1).

    Raises
    ------
    ValueError
        Unreadable file, wrong shape or dtype, non-finite values, or a side under 8 pixels.
    """
    if isinstance(face_image, str | Path):
        path = Path(face_image)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read a face image from {path}")
        face_image = image
    if not isinstance(face_image, np.ndarray):
        raise ValueError(f"face image must be a numpy array or a path, got {type(face_image).__name__}")
    image = face_image
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"face image must be grey (h, w) or BGR (h, w, 3), got shape {face_image.shape}")
    if min(image.shape[:2]) < MIN_FACE_IMAGE_PX:
        raise ValueError(f"face image too small: {image.shape[:2]} (at least {MIN_FACE_IMAGE_PX} px a side)")
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_ or not np.issubdtype(image.dtype, np.number):
        raise ValueError(f"face image must hold numbers, got dtype {image.dtype}")
    image = image.astype(np.float64)
    if not np.all(np.isfinite(image)):
        raise ValueError("face image contains NaN or infinite values")
    if image.max() <= 1.0:
        image = image * 255.0
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run torch ops of the calling thread on ``count`` intra-op threads, then restore the previous setting.

    A small net gains nothing from a second thread, and with OpenMP a busy machine (the face tracker, other
    analyzers) makes every parallel op wait for a descheduled worker: measured 7 ms single-threaded against
    75 ms median (510 ms p90) with two threads at load 12 on 2 cores. The setting is the calling thread's
    (OpenMP keeps it per thread); it is restored on exit.
    """
    import torch

    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def compile_for_cpu(model, cfg):
    """The bundled convolutional nets traced, frozen and optimised for CPU inference (oneDNN), others unchanged.

    Applies to ``MiniXception`` and ``FaceExpressionNet``, alone or as members of an ``EmotionEnsemble`` (their
    input size is fixed by the cfg, so a trace is exact; it stays valid for any batch size). On the dev box this
    halves FaceExpressionNet's time (7.0 -> 3.7 ms CPU for a face and its mirror image); outputs agree with the
    eager model to 1e-5. Anything else (a trained NovelEmotionModel with its extra heads) runs eagerly.
    """
    import torch

    from smartmirror.emotion.ensemble import EmotionEnsemble
    from smartmirror.emotion.faceapi import FaceExpressionNet
    from smartmirror.emotion.model import MiniXception

    def compile_one(net, input_size, channels):
        if not isinstance(net, MiniXception | FaceExpressionNet):
            return net
        example = torch.zeros(2, channels, *input_size)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # padding sizes from the fixed input size
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in favour of torch.compile
            # no check_trace: the tracer's own check re-runs the net several times (~2.5 s CPU per process);
            # tests/test_emotion_compile.py checks the traced nets against the eager ones instead
            traced = torch.jit.trace(net.eval(), example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    if isinstance(model, EmotionEnsemble):
        for i, adapter in enumerate(model.adapters):
            model.members[i] = compile_one(model.members[i], adapter["size"], 1 if adapter["grey"] else 3)
        return model
    return compile_one(model, cfg.input_size, cfg.in_channels)


class EmotionPredictor:
    """A loaded emotion model with its preprocessing.

    Parameters
    ----------
    model : str, Path or None
        A registered model name, a trained checkpoint path, or None for the default
        (``$SMARTMIRROR_EMOTION_MODEL`` or the bundled ``emotion_ensemble``).
    device : str
        Torch device ("cpu", "cuda").
    num_threads : int or None
        Torch intra-op threads during inference (None: leave torch's setting); see :func:`torch_threads`.
    backend : str
        "auto": the ONNX export (``weights/emotion_ensemble.onnx``, run by onnxruntime on one thread, no torch
        imported) for the default ensemble on CPU when the file is there, else torch; "torch" or "onnx" to insist
        ("onnx" raises ``FileNotFoundError`` where there is no export for this model and device).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: str = "cpu",
        num_threads: int | None = 1,
        backend: str = "auto",
    ):
        if backend not in ("auto", "torch", "onnx"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'onnx', got {backend!r}")
        self.model = model
        self.device = device
        self.num_threads = num_threads
        self.backend = backend
        self._lock = threading.Lock()
        self.model_ = None

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX export this predictor runs (None: torch runs the model)."""
        if self.backend == "torch":
            return None
        path = onnx_path_for(self.model, self.device)
        if path is None and self.backend == "onnx":
            raise FileNotFoundError(
                f"no ONNX export of emotion model {self.model!r} on {self.device} "
                "(only the default ensemble on CPU: scripts/export_emotion_onnx.py, weights/README.md)"
            )
        return path

    def load(self) -> None:
        """Load the model now (the analyzer does this when it is built, so the first face does not wait)."""
        self._ensure_model()

    def _ensure_model(self):
        with self._lock:
            if self.model_ is None:
                path = self.onnx_path
                if path is not None:
                    try:
                        self.model_ = OnnxEmotionEnsemble(path)
                    except Exception as exc:  # an unreadable or foreign file: onnxruntime's errors, ValueError
                        if self.backend == "onnx":
                            raise
                        log.warning("emotion: cannot run %s (%s); using torch", path, exc)
                if self.model_ is None:
                    self.model_ = self._load_torch()
        return self.model_

    def _load_torch(self):
        import torch

        from smartmirror.emotion.catalog import load_model
        from smartmirror.emotion.model import fuse_batchnorm

        model = load_model(self.model)
        cfg = model.cfg
        # BN folded into the convs: ~2x faster on CPU for these small nets
        model = fuse_batchnorm(model).to(self.device).eval()
        if self.device == "cpu":
            model = compile_for_cpu(model, cfg)
        else:
            model = model.to(memory_format=torch.channels_last)
        model.cfg = cfg
        return model

    @property
    def cfg(self):
        """The model's ModelCfg (labels, input size, channels, normalisation)."""
        return self._ensure_model().cfg

    @property
    def labels(self) -> tuple[str, ...]:
        return self.cfg.labels

    def prepare(self, face_image: np.ndarray) -> np.ndarray:
        """One face image -> float32 (channels, height, width) normalised as the model expects."""
        cfg = self.cfg
        image = as_face_array(face_image)
        if cfg.in_channels == 1 and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif cfg.in_channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        height, width = cfg.input_size
        if image.shape[:2] != (height, width):
            shrinking = image.shape[0] > height or image.shape[1] > width
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        pixels = (image.astype(np.float32) / 255.0 - cfg.mean) / cfg.std
        return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))

    @property
    def flip_tta(self) -> bool:
        """Whether the model averages each face with its mirror image itself (an ensemble with flip TTA)."""
        model = self._ensure_model()
        if isinstance(model, OnnxEmotionEnsemble):
            return model.flip
        from smartmirror.emotion.ensemble import EmotionEnsemble

        return isinstance(model, EmotionEnsemble) and model.flip

    def predict_batch(self, batch: np.ndarray, flip: bool | None = None) -> list[EmotionPrediction]:
        """Run prepared inputs (n, channels, height, width) float32 through the model.

        ``flip=False`` skips an ensemble's mirror-image pass for this call (half the cost); other models ignore it.
        """
        model = self._ensure_model()
        if isinstance(model, OnnxEmotionEnsemble):
            probabilities, valence, arousal = model.probabilities(batch, flip), None, None
        else:
            probabilities, valence, arousal = self._run_torch(model, batch, flip)
        labels = model.cfg.labels
        return [
            EmotionPrediction(
                probabilities={label: float(p) for label, p in zip(labels, row, strict=True)},
                valence=None if valence is None else float(valence[i]),
                arousal=None if arousal is None else float(arousal[i]),
            )
            for i, row in enumerate(probabilities)
        ]

    def _run_torch(
        self, model, batch: np.ndarray, flip: bool | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(probabilities (n, classes), valence (n,) or None, arousal (n,) or None) from a torch model."""
        import torch

        from smartmirror.emotion.ensemble import EmotionEnsemble

        with torch.inference_mode(), torch_threads(self.num_threads):
            inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            if self.device != "cpu":
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            output = model(inputs, flip=flip) if isinstance(model, EmotionEnsemble) else model(inputs)
            heads = output if isinstance(output, dict) else {"logits": output}
            probabilities = torch.softmax(heads["logits"].float(), dim=1).cpu().numpy()
            valence = heads["valence"].float().cpu().numpy().reshape(-1) if "valence" in heads else None
            arousal = heads["arousal"].float().cpu().numpy().reshape(-1) if "arousal" in heads else None
        return probabilities, valence, arousal

    def predict_image(self, face_image: np.ndarray | str | Path, flip: bool | None = None) -> EmotionPrediction:
        """An already-cropped face (grey or BGR, any size, or a path) -> prediction (``flip``: see predict_batch)."""
        return self.predict_batch(self.prepare(face_image)[None], flip=flip)[0]

    def crop(self, image_bgr: np.ndarray, face: FaceObservation) -> np.ndarray:
        """The model's face crop from a frame: eye-levelled, its input size, grey or BGR."""
        cfg = self.cfg
        return crop_face(image_bgr, face, cfg.input_size, face_scale=cfg.face_scale, grey=cfg.in_channels == 1)

    def predict_face(self, image_bgr: np.ndarray, face: FaceObservation) -> EmotionPrediction:
        """A frame plus the tracker's observation -> prediction for the tracked face."""
        return self.predict_image(self.crop(image_bgr, face))
