"""face-api.js FaceExpressionNet in PyTorch: parity with the original JavaScript model, and the bundled ensemble.

The fixture ``tests/fixtures/face_api_expression_reference.npz`` holds real face crops (the astronaut portrait
through the app's own crop, its mirror image and a darkened copy, five scikit-image LFW faces) and the
probabilities face-api.js itself gave for them in Node (tfjs 4.22 CPU backend; ``scripts/face_api_reference.py``).
Both sides use the same dequantized weights, so the port agrees to float rounding: measured max 1.5e-7 in
probability and 1.1e-5 in log-probability (probabilities down to 1e-20 compared; the JS model's smallest is 2e-17).
We allow 1e-4 and 1e-3. The faces are read confidently, so mistakes show in the small probabilities: feeding BGR
moves a log-probability by 11, dropping the mean subtraction by 9 (checked below).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "face_api_expression_reference.npz"
MAX_PROB_DIFF = 1e-4
MAX_LOG_PROB_DIFF = 1e-3


@pytest.fixture(scope="module")
def reference():
    data = np.load(FIXTURE)
    return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def face_net():
    from smartmirror.emotion.catalog import create_model

    return create_model("face_expression_net", pretrained=True)


def _probabilities(model, faces_rgb: np.ndarray) -> np.ndarray:
    from smartmirror.emotion.inference import torch_threads

    x = torch.from_numpy(faces_rgb).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode(), torch_threads(1):
        return torch.softmax(model(x), dim=1).numpy()


def _log_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.log(np.clip(a, 1e-20, 1)) - np.log(np.clip(b, 1e-20, 1))).max())


def test_fixture_holds_real_faces_and_face_apis_labels(reference):
    assert reference["faces_rgb"].shape == (8, 112, 112, 3) and reference["faces_rgb"].dtype == np.uint8
    assert list(reference["labels"]) == ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
    np.testing.assert_allclose(reference["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    # the faces differ: the JS model did not see one image eight times
    assert len({row.argmax() for row in reference["probabilities"]}) >= 3


def test_port_matches_the_javascript_model(reference, face_net):
    probabilities = _probabilities(face_net, reference["faces_rgb"])
    assert np.abs(probabilities - reference["probabilities"]).max() < MAX_PROB_DIFF
    assert _log_diff(probabilities, reference["probabilities"]) < MAX_LOG_PROB_DIFF


class _SymmetricPad(torch.nn.Module):
    def __init__(self, original):
        super().__init__()
        self.kernel = original.kernel

    def forward(self, x):
        return F.pad(x, (1, 1, 1, 1))


def _with_symmetric_padding(model):
    import copy

    from smartmirror.emotion.faceapi import SamePad

    broken = copy.deepcopy(model)
    for module in list(broken.modules()):
        for name, child in module.named_children():
            if isinstance(child, SamePad):
                setattr(module, name, _SymmetricPad(child))
    return broken


@pytest.mark.parametrize("mistake", ["bgr_input", "symmetric_padding", "no_mean"])
def test_parity_check_catches_porting_mistakes(reference, face_net, mistake):
    import copy

    faces, model = reference["faces_rgb"], face_net
    if mistake == "bgr_input":
        faces = np.ascontiguousarray(faces[..., ::-1])
    elif mistake == "symmetric_padding":
        model = _with_symmetric_padding(face_net)
    else:
        model = copy.deepcopy(face_net)
        model.mean_rgb.zero_()
    probabilities = _probabilities(model, faces)
    assert _log_diff(probabilities, reference["probabilities"]) > 100 * MAX_LOG_PROB_DIFF


def test_weights_file_matches_its_readme_row():
    from smartmirror.emotion.catalog import model_cfg

    cfg = model_cfg("face_expression_net")
    path = REPO / "weights" / cfg.file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    readme = (REPO / "weights" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {cfg.file} "))
    assert digest in row
    assert "Vincent M" in row and "Vladimir Mandic" in row and "scripts/convert_face_api_weights.py" in row
    assert re.search(r"MIT", row)


def test_labels_map_onto_the_fer_classes():
    from smartmirror.emotion.faceapi import FACE_API_LABELS, FACE_EXPRESSION_LABELS
    from smartmirror.emotion.labels import FER_LABELS

    assert dict(zip(FACE_API_LABELS, FACE_EXPRESSION_LABELS, strict=True)) == {
        "neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
        "fearful": "fear", "disgusted": "disgust", "surprised": "surprise",
    }
    assert sorted(FACE_EXPRESSION_LABELS) == sorted(FER_LABELS)


def test_mean_ensemble_averages_its_members_over_flips(reference):
    # the default's learned combiner is tested in test_emotion_ensemble.py
    from smartmirror.emotion.catalog import create_model
    from smartmirror.emotion.labels import FER_LABELS

    ensemble = create_model("emotion_ensemble", pretrained=True, combiner="mean")
    assert ensemble.cfg.labels == FER_LABELS and ensemble.cfg.input_size == (112, 112)
    x = torch.from_numpy(reference["faces_rgb"]).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        got = torch.softmax(ensemble(x), dim=1).numpy()
        expected = np.zeros_like(got)
        for view in (x, x.flip(-1)):
            # mini-Xception: grey (BT.601), antialiased 64x64, [-1, 1]; FaceExpressionNet: RGB 112 as is
            grey = (view * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            small = F.interpolate(grey, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
            mini = torch.softmax(create_model("mini_xception_fer2013", pretrained=True)(small * 2 - 1), 1).numpy()
            face = torch.softmax(create_model("face_expression_net", pretrained=True)(view), 1).numpy()
            face_order = [ensemble.members[1].cfg.labels.index(label) for label in FER_LABELS]
            expected += 0.25 * (mini + face[:, face_order])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_each_member_stays_selectable(astronaut_bgr, astronaut_face, monkeypatch):
    from smartmirror.emotion.catalog import create_model, load_model
    from smartmirror.emotion.inference import EmotionPredictor
    from smartmirror.emotion.spec import MODEL_ENV_VAR

    for name, size in [("mini_xception_fer2013", (64, 64)), ("face_expression_net", (112, 112))]:
        predictor = EmotionPredictor(name)
        assert predictor.crop(astronaut_bgr, astronaut_face).shape[:2] == size
        assert predictor.predict_face(astronaut_bgr, astronaut_face).label == "happy"
        monkeypatch.setenv(MODEL_ENV_VAR, name)
        assert load_model(None).model_name == name
    monkeypatch.delenv(MODEL_ENV_VAR)
    single = create_model("emotion_ensemble", pretrained=True, members=("face_expression_net",), flip=False)
    assert len(single.members) == 1 and not single.flip
    with pytest.raises(ValueError, match="ensemble"):
        create_model("emotion_ensemble", labels=("happy", "sad"))


def test_ensemble_reads_the_astronaut_as_happy_through_the_live_path(astronaut_bgr, astronaut_face):
    from smartmirror.emotion.inference import EmotionPredictor

    predictor = EmotionPredictor()  # the default
    crop = predictor.crop(astronaut_bgr, astronaut_face)
    assert crop.shape == (112, 112, 3)
    prediction = predictor.predict_face(astronaut_bgr, astronaut_face)
    assert prediction.label == "happy" and prediction.probabilities["happy"] > 0.8
    assert abs(sum(prediction.probabilities.values()) - 1.0) < 1e-5


def test_cpu_compiled_predictor_matches_the_eager_models_for_any_batch(reference):
    from smartmirror.emotion.catalog import create_model
    from smartmirror.emotion.inference import EmotionPredictor

    faces_bgr = [np.ascontiguousarray(face[..., ::-1]) for face in reference["faces_rgb"]]
    for name in ("face_expression_net", "mini_xception_fer2013", "emotion_ensemble"):
        predictor = EmotionPredictor(name)
        batch = np.stack([predictor.prepare(face) for face in faces_bgr])
        with torch.inference_mode():
            eager = torch.softmax(create_model(name, pretrained=True)(torch.from_numpy(batch)), 1).numpy()
        for rows in (slice(0, 1), slice(0, 5), slice(0, 8)):
            predictions = predictor.predict_batch(batch[rows])
            got = np.array([[p.probabilities[k] for k in predictor.labels] for p in predictions])
            np.testing.assert_allclose(got, eager[rows], atol=1e-5, err_msg=name)


def test_live_analyzer_spreads_the_mirror_pass_over_frames(astronaut_bgr, astronaut_face):
    from smartmirror.emotion.analyzer import EmotionAnalyzer
    from smartmirror.frames import FramePacket

    analyzer = EmotionAnalyzer()
    predictor = analyzer.predictor
    assert predictor.flip_tta
    crop = predictor.crop(astronaut_bgr, astronaut_face)
    views = [predictor.predict_image(crop, flip=False), predictor.predict_image(crop[:, ::-1].copy(), flip=False)]
    both = predictor.predict_image(crop)  # the ensemble's own flip TTA (the combiner on the views' mean log-probs)
    assert both.label == views[0].label == views[1].label == "happy"
    for i in range(6):
        analyzer.update(FramePacket(i / 30, astronaut_bgr, i), astronaut_face)
    summary = analyzer.summary()
    assert summary["label"] == "happy"
    # six frames, three of each view: the clip mean is the mean of the two views (no "tired" evidence here)
    for label in ("happy", "neutral", "surprise"):
        mean = 0.5 * (views[0].probabilities[label] + views[1].probabilities[label])
        assert summary["probabilities"][label] == pytest.approx(mean, abs=2e-4)
        assert summary["probabilities"][label] == pytest.approx(both.probabilities[label], abs=0.05)
