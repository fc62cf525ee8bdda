"""The open-rppg ports: parity with the original package, preprocessing, registry, and a real heart rate."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from smartmirror.frames import FramePacket
from smartmirror.vitals import face_crops, neural
from smartmirror.vitals.methods import get_method, list_methods

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
PORTS = {"facephys_rlap": "facephys-rlap", "me_rlap": "me-rlap", "me_pure": "me-pure"}


def pattern_clip(n_frames: int = 192) -> np.ndarray:
    """The deterministic clip of scripts/open_rppg_reference.py (checked against the fixture's sha1)."""
    t = np.arange(n_frames)[:, None, None, None] / 30.0
    i = np.arange(36)[None, :, None, None]
    j = np.arange(36)[None, None, :, None]
    c = np.arange(3)[None, None, None, :]
    base = 128 + 50 * np.sin(0.31 * i + 0.7 * c) * np.cos(0.23 * j - 0.4 * c)
    pulse = 4.0 * np.sin(2 * np.pi * 1.3 * t + 0.05 * i) * (1.0 + 0.3 * (c == 1))
    texture = 6.0 * np.sin(1.7 * i * j + 2.3 * c + 11.0 * t)
    return np.clip(np.round(base + pulse + texture), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def parity_inputs() -> dict[str, np.ndarray]:
    data = np.load(FIXTURES / "open_rppg_inputs.npz")
    pattern = pattern_clip()
    assert hashlib.sha1(pattern.tobytes()).hexdigest() == str(data["pattern_sha1"]), "pattern clip drifted"
    return {"face": data["face"], "pattern": pattern, "heart_rate_bpm": float(data["heart_rate_bpm"])}


BACKENDS = [("facephys_rlap", "onnx"), ("facephys_rlap", "torch"), ("me_rlap", "torch"), ("me_pure", "torch")]


@pytest.mark.parametrize(("fixture_name", "backend"), BACKENDS)
@pytest.mark.parametrize("clip", ["face", "pattern"])
def test_port_matches_the_original_package(parity_inputs, fixture_name, backend, clip):
    """Same input, same pulse as open-rppg 0.1.1 (Keras 3 / JAX) run once in a throwaway venv.

    Tolerances, relative to the reference's standard deviation: 1 % of the largest sample difference against
    the original with every layer in float32; 3 % against the package as shipped (it computes several layers
    in float16, whose rounding alone is of that order).
    """
    reference = np.load(FIXTURES / f"open_rppg_{fixture_name}.npz")
    ours = neural.pretrained_pulse(PORTS[fixture_name], parity_inputs[clip], sampling_rate=30.0, backend=backend)
    for precision, tolerance in (("float32", 0.01), ("shipped", 0.03)):
        expected = reference[f"{precision}_{clip}"].astype(np.float64)
        assert ours.shape == expected.shape
        scale = expected.std()
        assert np.max(np.abs(ours - expected)) < tolerance * scale, precision
        assert np.corrcoef(ours, expected)[0, 1] > 0.9995, precision


@pytest.mark.parametrize("name", sorted(PORTS.values()))
def test_learned_methods_find_the_synthetic_heart_rate(parity_inputs, name):
    """On real FaceMesh crops of a pulsing synthetic face (84 bpm), the spectral peak of each model's pulse."""
    from smartmirror.vitals.training_data import spectral_peak_bpm

    method = get_method(name)
    pulse = method.fn(parity_inputs["face"], sampling_rate=30.0)
    assert abs(spectral_peak_bpm(pulse, 30.0) - parity_inputs["heart_rate_bpm"]) < 6.0


def test_port_matches_open_rppg_end_to_end_on_a_real_recording():
    """A real webcam recording (PhysRecorder, MIT; committed 10 s H.264 clip): our decoding, FaceMesh, BlazeFace
    box, Kalman crop and network against open-rppg 0.1.1 run end to end on the same file, its face detection made
    synchronous (``scripts/open_rppg_reference.py real``). The boxes are open-rppg's on every frame and the pulse
    is its pulse; with MediaPipe's BlazeFace decoding the correlation was 0.80, with the FaceMesh-built box 0.66."""
    from smartmirror.face import FaceTracker
    from smartmirror.frames import read_video_packets
    from smartmirror.vitals.training import spectral_peak_bpm

    reference = np.load(FIXTURES / "open_rppg_physrecorder_10s.npz")
    packets = list(read_video_packets(REPO / "tests" / "data" / "physrecorder_webcam_10s.mp4"))
    with FaceTracker() as tracker:
        faces = [tracker.process(p.image) for p in packets]
    fps = (len(packets) - 1) / (packets[-1].t - packets[0].t)
    expected = reference["raw_bvp"].astype(np.float64)
    boxes = []
    with face_crops.FaceCropper() as cropper:
        for packet, face in zip(packets, faces, strict=True):
            cropper.update(packet, face)
            boxes.append(cropper.box_.astype(int).ravel())
    np.testing.assert_array_equal(np.stack(boxes), reference["boxes_y0y1x0x1"])  # (y0, y1, x0, x1) per frame
    agreement = {}
    for detector in ("blazeface", "landmarks"):
        crops, has_face = face_crops.crop_faces(packets, faces, detector=detector)
        assert has_face.all()
        model_crops = crops[neural.model_rate_slots(len(crops), fps)]
        ours = neural.pretrained_pulse("facephys-rlap", model_crops, sampling_rate=30.0)
        assert len(ours) == len(expected)
        agreement[detector] = np.corrcoef(ours, expected)[0, 1]
        if detector == "blazeface":
            assert abs(spectral_peak_bpm(ours, 30.0) - spectral_peak_bpm(expected, 30.0)) < 0.1
    assert agreement["blazeface"] > 0.9999  # measured 0.999998 (the ONNX graph against Keras/JAX in float16)
    assert agreement["landmarks"] < 0.9  # the FaceMesh-built box: another crop, another pulse


def test_blazeface_detector_finds_the_astronaut_and_nothing_in_the_dark(astronaut_bgr):
    """open-rppg's detector (its box on every frame of a real clip: the test above): a box of open-rppg's shape
    on the astronaut portrait, none on a black frame, anchors in open-rppg's order."""
    from smartmirror.vitals import blazeface

    detector = blazeface.BlazeFaceDetector()
    box = detector.box(astronaut_bgr)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 0.8 < (x1 - x0) / (y1 - y0) < 0.9  # widths 0.9 and heights 1.1 of BlazeFace's square box
    assert detector.box(np.zeros_like(astronaut_bgr)) is None
    anchors = blazeface.short_range_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[[0, 1, 2, 512]], [[1 / 32, 1 / 32], [1 / 32, 1 / 32], [3 / 32, 1 / 32],
                                                           [1 / 16, 1 / 16]])


def test_onnx_graph_matches_the_pytorch_port_in_any_chunking(parity_inputs):
    """The exported FacePhys (onnxruntime) against the PyTorch port: whole clip, and frame by frame (streaming)."""
    frames = parity_inputs["face"]
    torch_pulse = neural.pretrained_pulse("facephys-rlap", frames, sampling_rate=30.0, backend="torch")
    net = neural.load_onnx("facephys-rlap")
    assert net is not None, "weights/rppg_facephys_rlap.onnx missing"
    scale = torch_pulse.std()
    for chunk in (7, 32, len(frames)):
        assert np.max(np.abs(net.run(frames, chunk_frames=chunk) - torch_pulse)) < 1e-4 * scale, chunk
    state, streamed = None, []
    for frame in frames[:60]:
        pulse, state = net.step(frame[None], state)
        streamed.append(pulse[0])
    assert np.max(np.abs(np.array(streamed) - torch_pulse[:60])) < 1e-4 * scale
    with pytest.raises(ValueError, match="no ONNX export"):
        neural.pretrained_pulse("me-rlap", frames, sampling_rate=30.0, backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        neural.pretrained_pulse("facephys-rlap", frames, sampling_rate=30.0, backend="jax")


def test_torch_port_runs_on_one_thread_and_restores_the_setting():
    """The learned methods never leave torch's thread count changed (OpenMP spin-waiting under contention)."""
    import torch

    before = torch.get_num_threads()
    with neural._single_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_learned_methods_join_the_registry():
    frames_methods = list_methods(kind="frames")
    for name in PORTS.values():
        assert name in frames_methods
        method = get_method(name.upper())
        assert method.kind == "frames" and method.input_size == (36, 36)
        assert isinstance(method.realtime, bool)
    assert set(PORTS.values()) <= set(list_methods())


def test_model_rate_slots_repeat_and_skip_like_open_rppg():
    assert np.array_equal(neural.model_rate_slots(90, 30.0), np.arange(90))
    slow = neural.model_rate_slots(30, 15.0)  # 2 s at 15 fps -> 59 slots at 30 fps, each frame about twice
    assert len(slow) == 59 and np.array_equal(np.bincount(slow)[:5], [1, 2, 2, 2, 2])
    fast = neural.model_rate_slots(120, 60.0)  # 2 s at 60 fps -> every other frame
    assert len(fast) == 60 and np.all(np.diff(fast) == 2)
    with pytest.raises(ValueError, match="sampling_rate"):
        neural.model_rate_slots(10, 0.0)


def test_other_frame_rates_give_the_same_pulse(parity_inputs):
    """A 15 fps copy of the clip (every other frame) yields the 30 fps pulse at those frames."""
    full = neural.pretrained_pulse("facephys-rlap", parity_inputs["face"], sampling_rate=30.0)
    half = neural.pretrained_pulse("facephys-rlap", parity_inputs["face"][::2], sampling_rate=15.0)
    assert half.shape == (96,)
    assert np.corrcoef(half[10:], full[::2][10:])[0, 1] > 0.8


def test_bad_crops_raise_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        neural.pulse_facephys_rlap(np.zeros((10, 36, 36), np.uint8), sampling_rate=30.0)
    with pytest.raises(ValueError, match="uint8"):
        neural.pulse_me_rlap(np.zeros((10, 36, 36, 3), np.float32), sampling_rate=30.0)
    with pytest.raises(ValueError, match="no face crops"):
        neural.pulse_me_pure(np.zeros((0, 36, 36, 3), np.uint8), sampling_rate=30.0)


def test_larger_crops_are_resized_to_the_model_input(parity_inputs):
    import cv2

    small = parity_inputs["face"][:96]
    big = np.stack([cv2.resize(f, (72, 72), interpolation=cv2.INTER_CUBIC) for f in small])
    a = neural.pulse_facephys_rlap(big, sampling_rate=30.0)
    b = neural.pulse_facephys_rlap(small, sampling_rate=30.0)
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_face_box_matches_blazeface_on_the_astronaut(astronaut_bgr, astronaut_face):
    """Our landmark-built box against open-rppg's geometry on MediaPipe's own BlazeFace detection."""
    import cv2
    import mediapipe as mp

    height, width = astronaut_bgr.shape[:2]
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.3) as detector:
        box = detector.process(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB)).detections[0]
    rel = box.location_data.relative_bounding_box
    cx, cy = (rel.xmin + rel.width / 2) * width, (rel.ymin + rel.height / 2) * height
    side_w, side_h = rel.width * width, rel.height * height
    blaze = np.array([cx - 0.45 * side_w, cy - 0.6 * side_h, cx + 0.45 * side_w, cy + 0.5 * side_h])
    ours = np.array(face_crops.face_box(astronaut_face), dtype=float)
    inter = np.prod(np.clip(np.minimum(ours[2:], blaze[2:]) - np.maximum(ours[:2], blaze[:2]), 0, None))
    union = np.prod(ours[2:] - ours[:2]) + np.prod(blaze[2:] - blaze[:2]) - inter
    assert inter / union > 0.75  # BlazeFace's own box varies by ~10 % with the image's letterbox
    crop = face_crops.face_crop(astronaut_bgr, astronaut_face)
    assert crop.shape == (36, 36, 3) and crop.dtype == np.uint8


def test_crop_faces_keeps_a_still_box_and_flags_missing_faces(astronaut_bgr, astronaut_face):
    """The box holds still under sub-threshold jitter; frames before the first face are black and flagged."""
    packets = [FramePacket(t=i / 30.0, image=astronaut_bgr, index=i) for i in range(40)]
    faces = [None] * 5 + [astronaut_face] * 30 + [None] * 5
    crops, has_face = face_crops.crop_faces(packets, faces)
    assert crops.shape == (40, 36, 36, 3)
    assert not crops[:5].any() and not has_face[:5].any()
    assert has_face[5:].all()  # a face within the last second
    assert all(np.array_equal(crops[5], c) for c in crops[5:])  # one box, kept after the face left
    late = [None] * 5 + [astronaut_face] + [None] * 60
    _, flags = face_crops.crop_faces([FramePacket(t=i / 30.0, image=astronaut_bgr) for i in range(66)], late)
    assert flags[5] and not flags[-1]


def test_box_filter_noise_follows_the_frame_interval(astronaut_bgr, astronaut_face, monkeypatch):
    """open-rppg scales the Kalman filter's process noise by the frame interval over 1/30 s: a 15 fps clip
    updates with time scale 2, a 30 fps one with 1."""
    k = face_crops._Kalman1D(100.0)
    gain = (1.0 + 0.01 * 2.0**2) / (1.0 + 0.01 * 2.0**2 + 0.5)
    assert k.update(110.0, time_scale=2.0) == pytest.approx(100.0 + gain * 10.0)
    scales = []
    update = face_crops._Kalman1D.update

    def recording(self, measurement, time_scale=1.0):
        scales.append(time_scale)
        return update(self, measurement, time_scale)

    monkeypatch.setattr(face_crops._Kalman1D, "update", recording)
    for fps in (15.0, 30.0):
        scales.clear()
        packets = [FramePacket(t=i / fps, image=astronaut_bgr, index=i) for i in range(12)]
        face_crops.crop_faces(packets, [astronaut_face] * 12, detector="landmarks")
        assert len(scales) == 4 * 11  # four coordinates, every frame after the first
        np.testing.assert_allclose(scales, 30.0 / fps)


def test_weights_files_are_recorded_in_weights_readme():
    readme = (REPO / "weights" / "README.md").read_text()
    for cfg in neural.PRETRAINED.values():
        path = REPO / "weights" / cfg.file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        row = next(line for line in readme.splitlines() if line.startswith(f"| {cfg.file} "))
        assert digest in row and "open-rppg 0.1.1" in row and "scripts/convert_open_rppg.py" in row
        if cfg.onnx_file:
            digest = hashlib.sha256((REPO / "weights" / cfg.onnx_file).read_bytes()).hexdigest()
            row = next(line for line in readme.splitlines() if line.startswith(f"| {cfg.onnx_file} "))
            assert digest in row and "scripts/export_facephys_onnx.py" in row
    from smartmirror.vitals.blazeface import BLAZEFACE_FILE

    digest = hashlib.sha256((REPO / "weights" / BLAZEFACE_FILE).read_bytes()).hexdigest()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {BLAZEFACE_FILE} "))
    assert digest in row and "open-rppg" in row and "rppg/weights/blaze_face.onnx" in row


def test_state_pickle_loader_refuses_foreign_globals():
    import io
    import pickle
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from convert_open_rppg import _NumpyOnlyUnpickler

    arrays = [np.arange(3, dtype=np.float32), {"a": np.ones((2, 2))}]
    assert np.array_equal(_NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()[0], arrays[0])
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(re.compile("x")))).load()
