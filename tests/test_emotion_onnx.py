"""The default ensemble's ONNX export (weights/emotion_ensemble.onnx, scripts/export_emotion_onnx.py).

onnxruntime must give the torch ensemble's probabilities on real faces (the crops of
tests/fixtures/face_api_expression_reference.npz and the astronaut's live crop), with and without the mirror-image
pass, for one face and a batch; the export's contract must be the registered model's and its sources the bundled
files; and the default analyzer must build and read a face without importing torch (checked in a fresh
interpreter, since other tests import torch into this one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ONNX = REPO / "weights" / "emotion_ensemble.onnx"
FIXTURE = REPO / "tests" / "fixtures" / "face_api_expression_reference.npz"


@pytest.fixture(scope="module")
def faces_bgr(astronaut_bgr, astronaut_face) -> list[np.ndarray]:
    """Nine real face crops (BGR): the fixture's eight and the astronaut's live crop."""
    from smartmirror.emotion.inference import EmotionPredictor

    crops = [np.ascontiguousarray(face[..., ::-1]) for face in np.load(FIXTURE)["faces_rgb"]]
    return crops + [EmotionPredictor().crop(astronaut_bgr, astronaut_face)]


def _probabilities(predictor, batch: np.ndarray, flip: bool | None) -> np.ndarray:
    return np.array([[p.probabilities[k] for k in predictor.labels] for p in predictor.predict_batch(batch, flip)])


def test_onnxruntime_gives_the_torch_ensembles_probabilities_on_real_faces(faces_bgr):
    torch = pytest.importorskip("torch")
    from smartmirror.emotion.catalog import load_model
    from smartmirror.emotion.inference import EmotionPredictor
    from smartmirror.emotion.onnx_model import OnnxEmotionEnsemble

    ort_predictor = EmotionPredictor(backend="onnx")
    torch_predictor = EmotionPredictor(backend="torch")
    assert isinstance(ort_predictor._ensure_model(), OnnxEmotionEnsemble)
    assert ort_predictor.cfg == dataclasses.replace(torch_predictor.cfg, file=ONNX.name)
    assert ort_predictor.flip_tta and torch_predictor.flip_tta
    batch = np.stack([ort_predictor.prepare(face) for face in faces_bgr])
    np.testing.assert_array_equal(batch, np.stack([torch_predictor.prepare(face) for face in faces_bgr]))
    eager = load_model(None)  # the ensemble as registered: batchnorm unfused, not traced
    results = {}
    for flip in (None, True, False):
        with torch.inference_mode():
            expected = torch.softmax(eager(torch.from_numpy(batch), flip=flip), 1).numpy()
        for rows in (slice(0, 1), slice(8, 9), slice(0, 9)):
            got = _probabilities(ort_predictor, batch[rows], flip)
            np.testing.assert_allclose(got, expected[rows], atol=1e-4, err_msg=f"flip={flip} rows={rows}")
            np.testing.assert_allclose(got, _probabilities(torch_predictor, batch[rows], flip), atol=1e-4)
            np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        results[flip] = got
    np.testing.assert_allclose(results[None], results[True], atol=1e-6)  # the export's default is the flip pass
    assert np.abs(results[True] - results[False]).max() > 1e-3  # the mirror-image pass changes the answer
    assert len({row.argmax() for row in results[True]}) > 2  # real faces, several different expressions


def test_the_exports_contract_is_the_registered_models_and_its_readme_row():
    pytest.importorskip("torch")
    from smartmirror.emotion.catalog import model_cfg
    from smartmirror.emotion.ensemble import DEFAULT_COMBINER, DEFAULT_MEMBERS
    from smartmirror.emotion.onnx_model import OnnxEmotionEnsemble

    runner = OnnxEmotionEnsemble(ONNX)
    cfg = model_cfg("emotion_ensemble")
    assert (runner.cfg.labels, runner.cfg.input_size, runner.cfg.in_channels) == (
        cfg.labels, cfg.input_size, cfg.in_channels)
    assert (runner.cfg.mean, runner.cfg.std, runner.cfg.face_scale) == (cfg.mean, cfg.std, cfg.face_scale)
    assert runner.flip and tuple(runner.meta["members"]) == DEFAULT_MEMBERS
    # made from the bundled files as they are now (a re-converted member or re-fitted combiner needs a re-export)
    sources = [model_cfg(name).file for name in DEFAULT_MEMBERS] + [DEFAULT_COMBINER]
    assert runner.meta["sources_sha256"] == {
        name: hashlib.sha256((REPO / "weights" / name).read_bytes()).hexdigest() for name in sources
    }
    assert [i.shape[0] for i in runner.session.get_inputs()] == ["faces"]  # any batch size
    readme = (REPO / "weights" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {ONNX.name} "))
    assert hashlib.sha256(ONNX.read_bytes()).hexdigest() in row and "scripts/export_emotion_onnx.py" in row


def test_other_models_and_missing_or_broken_exports_use_torch(tmp_path, monkeypatch, caplog):
    pytest.importorskip("torch")
    from smartmirror.emotion import onnx_model
    from smartmirror.emotion.ensemble import EmotionEnsemble
    from smartmirror.emotion.inference import EmotionPredictor

    assert EmotionPredictor().onnx_path == ONNX
    assert EmotionPredictor("face_expression_net").onnx_path is None
    assert EmotionPredictor(device="cuda").onnx_path is None
    with pytest.raises(FileNotFoundError, match="ONNX export"):
        EmotionPredictor("mini_xception_fer2013", backend="onnx").load()
    with pytest.raises(ValueError, match="backend"):
        EmotionPredictor(backend="tensorflow")
    monkeypatch.setattr(onnx_model, "WEIGHTS_DIR", tmp_path)
    assert EmotionPredictor().onnx_path is None  # no export: torch
    (tmp_path / onnx_model.ONNX_FILE).write_bytes(b"not a graph")
    predictor = EmotionPredictor()
    assert predictor.onnx_path is not None
    with caplog.at_level("WARNING"):
        assert isinstance(predictor._ensure_model(), EmotionEnsemble)
    assert "using torch" in caplog.text
    with pytest.raises(Exception, match="(?i)protobuf"):  # onnxruntime's own error class (InvalidProtobuf)
        EmotionPredictor(backend="onnx").load()


NO_TORCH_SCRIPT = """
import json, sys
from smartmirror.emotion import EmotionAnalyzer
from smartmirror.face import FaceTracker
from smartmirror.frames import FramePacket
from smartmirror.synth import default_face_image

image = default_face_image()
with FaceTracker(static_image_mode=True) as tracker:
    face = tracker.process(image)
analyzer = EmotionAnalyzer()
built = type(analyzer.predictor.model_).__name__  # loaded when built, before the first face
states = [analyzer.update(FramePacket(i / 30, image, i), face) for i in range(2)]
print(json.dumps({"torch": "torch" in sys.modules, "built": built, "label": states[-1].raw_label,
                  "happy": analyzer.summary()["probabilities"]["happy"]}))
"""


def test_the_default_analyzer_reads_a_face_without_importing_torch():
    env = {**os.environ, "PYTHONPATH": str(REPO), "SMARTMIRROR_EMOTION_MODEL": ""}
    run = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["built"] == "OnnxEmotionEnsemble"
    assert result["label"] == "happy" and result["happy"] > 0.8
    assert result["torch"] is False
