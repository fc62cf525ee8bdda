"""Learned pulse extractors ("frames" methods): open-rppg's pretrained FacePhys and ME, ported to PyTorch.

Registered in :mod:`smartmirror.vitals.methods` as ``facephys-rlap``, ``me-rlap`` and ``me-pure``. Each method's
``fn(frames_rgb, *, sampling_rate)`` takes face crops (n, h, w, 3) RGB uint8 and returns one pulse sample per
crop; inside it does what open-rppg 0.1.1 does before its networks:

- crops resized to 36 x 36 with ``cv2.INTER_AREA`` (a no-op for crops made by
  :func:`smartmirror.vitals.face_crops.crop_faces`), scaled by 1/255;
- frames re-timed to the networks' 30 frames/s by open-rppg's nearest-frame rule (a frame is repeated or
  skipped), the output mapped back onto the input frames;
- FacePhys runs continuously (its state carried over the whole clip); ME runs on 160-frame chunks carrying its
  state from the learned initial state, the last partial chunk padded with its last frame.

The face crops come from :mod:`smartmirror.vitals.face_crops` (open-rppg's box, BlazeFace, Kalman filter).

Weights: ``weights/rppg_*.pt`` made by ``scripts/convert_open_rppg.py`` from the open-rppg wheel (see
weights/README.md for licence terms). Checkpoints trained here with ``smartmirror train rppg`` that output a
pulse can join the registry with :func:`smartmirror.vitals.checkpoints.register_checkpoint`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smartmirror.paths import WEIGHTS_DIR, weights_path
from smartmirror.vitals.face_crops import MODEL_INPUT_SIZE
from smartmirror.vitals.method_registry import PulseMethod, register_method

log = logging.getLogger(__name__)

#: Frame rate of the ported networks (their input size: :data:`~smartmirror.vitals.face_crops.MODEL_INPUT_SIZE`).
MODEL_FPS = 30.0

@dataclass(frozen=True)
class PretrainedCfg:
    """One ported open-rppg model: weights file and the preprocessing contract."""

    name: str
    file: str
    network: str  # "facephys" or "me"
    source: str
    realtime: bool
    description: str
    input_size: tuple[int, int] = MODEL_INPUT_SIZE
    fps: float = MODEL_FPS
    onnx_file: str | None = None  # the same network exported by scripts/export_facephys_onnx.py (faster)


#: ``realtime``: offered live. Re-running a network over the live pool every second (900 frames) costs far too
#: much, so a live learned method must stream: FacePhys does, through its ONNX export
#: (:mod:`smartmirror.vitals.streaming`, ~2.4 ms of CPU per frame in chunks of 4 frames); it is registered as
#: real-time only where weights/ holds that export. ME runs on fixed 160-frame chunks: clip reports only.
PRETRAINED: dict[str, PretrainedCfg] = {
    "facephys-rlap": PretrainedCfg(
        "facephys-rlap", "rppg_facephys_rlap.pt", "facephys", "open-rppg 0.1.1 FacePhys.rlap", True,
        "FacePhys (streaming state-space network, trained on RLAP), open-rppg port",
        onnx_file="rppg_facephys_rlap.onnx",
    ),
    "me-rlap": PretrainedCfg(
        "me-rlap", "rppg_me_rlap.pt", "me", "open-rppg 0.1.1 ME-chunk.rlap", False,
        "ME (state-space network, 160-frame chunks, trained on RLAP), open-rppg port",
    ),
    "me-pure": PretrainedCfg(
        "me-pure", "rppg_me_pure.pt", "me", "open-rppg 0.1.1 ME-chunk.pure", False,
        "ME (state-space network, 160-frame chunks, trained on PURE), open-rppg port",
    ),
}


# ----------------------------------------------------------------------------------------------- face crop


def model_rate_slots(n_frames: int, sampling_rate: float, fps: float = MODEL_FPS) -> np.ndarray:
    """Index of the input frame that fills each slot of the model's fixed-rate grid (open-rppg's rule).

    Slot j takes the first frame at or after time (j - 0.3) / fps; frames of a faster source are skipped,
    those of a slower one repeated.
    """
    if sampling_rate <= 0 or not np.isfinite(sampling_rate):
        raise ValueError(f"sampling_rate must be a positive number of frames/s, got {sampling_rate!r}")
    times = np.arange(n_frames) / sampling_rate
    n_slots = int(np.floor(times[-1] * fps + 0.3 + 1e-9)) + 1 if n_frames else 0
    slot_times = (np.arange(n_slots) - 0.3) / fps
    return np.minimum(np.searchsorted(times, slot_times - 1e-9, side="left"), n_frames - 1)


def validate_frames(frames_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected face crops of shape (n, height, width, 3), got {frames.shape}")
    if len(frames) == 0:
        raise ValueError("no face crops given")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB face crops, got {frames.dtype}")
    if frames.shape[1:3] != tuple(size):
        frames = np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in frames])
    return frames


# ------------------------------------------------------------------------------------------------ models


@functools.cache
def load_pretrained(name: str):
    """The ported network for ``name`` (a key of :data:`PRETRAINED`), weights loaded, in eval mode."""
    import torch

    from smartmirror.vitals.nets import FacePhys, MENet

    try:
        cfg = PRETRAINED[name]
    except KeyError:
        raise ValueError(f"Unknown pretrained rPPG model {name!r}; choose one of {sorted(PRETRAINED)}") from None
    network = FacePhys() if cfg.network == "facephys" else MENet()
    checkpoint = torch.load(weights_path(cfg.file), map_location="cpu", weights_only=True)
    network.load_state_dict(checkpoint["state_dict"])
    return network.eval()


#: Frames per call of the ONNX graph on a clip (1.9 ms/frame of CPU at 16-32 on 2 cores, 2.2 at 64; see
#: benchmarks/facephys_speed.py).
ONNX_CHUNK_FRAMES = 32


@contextlib.contextmanager
def _single_torch_thread() -> Iterator[None]:
    """Run torch on the calling thread alone while inside (restored after).

    With its default two OpenMP threads PyTorch spin-waits between the network's many small operations; beside
    other busy processes a 30 s clip then took 242 s instead of 9 s. One thread costs a little quiet speed and
    never collapses.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_network(network, frames_rgb: np.ndarray, *, chunk_frames: int, pad_last: bool) -> np.ndarray:
    """Run a state-carrying network over (n, 36, 36, 3) uint8 RGB frames already at the model's rate.

    Chunks of ``chunk_frames`` pass in order with the state carried; with ``pad_last`` the last partial chunk
    is padded by repeating its last frame (ME's fixed chunk length), otherwise it runs as it is. Torch runs
    on one thread (see :func:`_single_torch_thread`).
    """
    import torch

    out = []
    with _single_torch_thread(), torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(frames_rgb)).permute(0, 3, 1, 2).float() / 255.0
        state = network.init_state()
        for start in range(0, len(x), chunk_frames):
            chunk = x[start:start + chunk_frames]
            valid = len(chunk)
            if pad_last and valid < chunk_frames:
                chunk = torch.cat([chunk, chunk[-1:].expand(chunk_frames - valid, -1, -1, -1)])
            y, state = network(chunk, state)
            out.append(y[:valid])
    return torch.cat(out).double().numpy()


class OnnxPulseNet:
    """A streaming pulse network exported to ONNX (scripts/export_facephys_onnx.py), run by onnxruntime.

    One intra-op thread and no spinning: the session never competes with the other analyzers' threads.
    :meth:`step` takes a chunk of any length (1 frame when streaming) and the state the last call returned
    (None for a fresh clip: the graph's initializers hold the learned initial state).

    ``reuse_memory``: onnxruntime's static memory-reuse plan. Planning it for this graph's ~4800 nodes is most of
    the session's start (3.4 s of CPU with it, 0.5 s without: every ``smartmirror analyze`` process pays it),
    while a clip runs as fast without it (1.70 s against 1.84 s of CPU for 30 s in chunks of 32) at the same peak
    memory (216 MB); streamed chunks of 1-4 frames run 10-14 % slower without it. So clips go without, and the
    live stream, started once per session, with it (:func:`load_onnx`).
    """

    def __init__(self, path: str | Path, reuse_memory: bool = True):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_mem_reuse = reuse_memory
        options.log_severity_level = 3  # the state inputs' initializers are meant to be overridable
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in self.session.get_outputs()]
        self.state_outputs = [name for name in outputs if name.startswith("new_state_")]
        self.state_inputs = [name.removeprefix("new_") for name in self.state_outputs]

    def step(self, frames_rgb: np.ndarray, state: list[np.ndarray] | None = None
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pulse (L,) float32 for (L, 36, 36, 3) uint8 RGB frames at the model's rate, and the new state."""
        feed = {"frames": np.ascontiguousarray(frames_rgb, dtype=np.uint8)}
        if state is not None:
            feed.update(zip(self.state_inputs, state, strict=True))
        pulse, *new_state = self.session.run(["pulse", *self.state_outputs], feed)
        return pulse, new_state

    def run(self, frames_rgb: np.ndarray, chunk_frames: int = ONNX_CHUNK_FRAMES) -> np.ndarray:
        """Pulse (n,) float64 of a whole clip, in chunks with the state carried."""
        out, state = [], None
        for start in range(0, len(frames_rgb), chunk_frames):
            pulse, state = self.step(frames_rgb[start:start + chunk_frames], state)
            out.append(pulse)
        return np.concatenate(out).astype(np.float64)


def has_onnx(name: str) -> bool:
    """Whether model ``name`` has its ONNX export in weights/ (without loading it)."""
    cfg = PRETRAINED[name]
    return cfg.onnx_file is not None and (WEIGHTS_DIR / cfg.onnx_file).exists()


@functools.cache
def load_onnx(name: str, streaming: bool = False) -> OnnxPulseNet | None:
    """The ONNX export of model ``name``, or None when it has none (or its file is missing: torch runs it).

    ``streaming``: the session for a live stream (small chunks; memory reuse planned, see :class:`OnnxPulseNet`),
    else the one for clips. Each is made once per process.
    """
    if not has_onnx(name):
        return None
    return OnnxPulseNet(WEIGHTS_DIR / PRETRAINED[name].onnx_file, reuse_memory=streaming)


def pretrained_pulse(name: str, frames_rgb: np.ndarray, *, sampling_rate: float, backend: str = "auto"
                     ) -> np.ndarray:
    """Pulse (n,) from face crops (n, h, w, 3) RGB uint8 with the ported model ``name``.

    ``backend``: "onnx" (the exported graph, FacePhys only), "torch" (the PyTorch port) or "auto" (ONNX where
    the model has an export, else torch). Both give the same pulse to ~1e-5 of its spread.

    Raises
    ------
    ValueError
        For crops of the wrong shape or type, a non-positive sampling rate, or an unavailable backend.
    """
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
    cfg = PRETRAINED[name]
    frames = validate_frames(frames_rgb, cfg.input_size)
    slots = model_rate_slots(len(frames), sampling_rate, cfg.fps)
    onnx_net = load_onnx(name) if backend != "torch" else None
    if backend == "onnx" and onnx_net is None:
        raise ValueError(f"{name} has no ONNX export in weights/")
    if onnx_net is not None:
        pulse = onnx_net.run(frames[slots])
    elif cfg.network == "me":
        network = load_pretrained(name)
        pulse = run_network(network, frames[slots], chunk_frames=network.chunk_frames, pad_last=True)
    else:
        pulse = run_network(load_pretrained(name), frames[slots], chunk_frames=64, pad_last=False)
    if len(slots) == len(frames) and np.array_equal(slots, np.arange(len(frames))):
        return pulse
    return np.interp(np.arange(len(frames)) / sampling_rate, np.arange(len(slots)) / cfg.fps, pulse)


def pulse_facephys_rlap(frames_rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """FacePhys (RLAP weights): pulse (n,) from face crops (n, h, w, 3) RGB uint8; arbitrary units."""
    return pretrained_pulse("facephys-rlap", frames_rgb, sampling_rate=sampling_rate)


def pulse_me_rlap(frames_rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """ME, chunk mode (RLAP weights): pulse (n,) from face crops (n, h, w, 3) RGB uint8; arbitrary units."""
    return pretrained_pulse("me-rlap", frames_rgb, sampling_rate=sampling_rate)


def pulse_me_pure(frames_rgb: np.ndarray, *, sampling_rate: float) -> np.ndarray:
    """ME, chunk mode (PURE weights): pulse (n,) from face crops (n, h, w, 3) RGB uint8; arbitrary units."""
    return pretrained_pulse("me-pure", frames_rgb, sampling_rate=sampling_rate)


_PULSE_FNS = {"facephys-rlap": pulse_facephys_rlap, "me-rlap": pulse_me_rlap, "me-pure": pulse_me_pure}


def _register_pretrained() -> None:
    for name, cfg in PRETRAINED.items():
        if not (WEIGHTS_DIR / cfg.file).exists():
            log.info("learned pulse method %s unavailable: weights/%s missing", name, cfg.file)
            continue
        streams = has_onnx(name)
        register_method(PulseMethod(name=name, kind="frames", fn=_PULSE_FNS[name], realtime=cfg.realtime and streams,
                                    description=cfg.description, input_size=cfg.input_size))


_register_pretrained()
