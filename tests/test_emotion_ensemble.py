"""The bundled emotion ensemble's learned combiner: its file, its arithmetic on real faces, and its failure modes.

The combiner (``weights/emotion_ensemble_combiner.json``, ``scripts/fit_emotion_combiner.py``) is a multinomial
logistic regression over the two members' log-probabilities averaged over the face and its mirror image. Here
the features are rebuilt from the members themselves (mini-Xception: BT.601 grey, antialiased 64x64, [-1, 1];
FaceExpressionNet: the 112x112 RGB crop; face-api's labels reordered by name), so a combiner that reads the
members in the wrong order, averages probabilities instead of log-probabilities, transposes its weights or drops
its intercept fails. The faces are the real crops of tests/fixtures/face_api_expression_reference.npz.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
COMBINER = REPO / "weights" / "emotion_ensemble_combiner.json"
FIXTURE = REPO / "tests" / "fixtures" / "face_api_expression_reference.npz"


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    rgb = np.load(FIXTURE)["faces_rgb"]
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(COMBINER.read_text())


def _member_features(x: torch.Tensor) -> torch.Tensor:
    """(n, 14): mini-Xception then FaceExpressionNet log-probabilities in FER order, mean over face and mirror."""
    from smartmirror.emotion.catalog import create_model
    from smartmirror.emotion.labels import FER_LABELS

    mini = create_model("mini_xception_fer2013", pretrained=True)
    face = create_model("face_expression_net", pretrained=True)
    face_order = [face.cfg.labels.index(label) for label in FER_LABELS]
    views = []
    for view in (x, x.flip(-1)):
        grey = (view * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        small = F.interpolate(grey, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        views.append(
            torch.cat([torch.log_softmax(mini(small * 2 - 1), 1), torch.log_softmax(face(view), 1)[:, face_order]], 1)
        )
    return 0.5 * (views[0] + views[1])


def test_combiner_file_is_the_fitted_regression_and_matches_its_readme_row(spec):
    from smartmirror.emotion.ensemble import COMBINER_FORMAT, DEFAULT_COMBINER, DEFAULT_MEMBERS
    from smartmirror.emotion.labels import FER_LABELS

    assert COMBINER.name == DEFAULT_COMBINER
    assert spec["format"] == COMBINER_FORMAT
    assert tuple(spec["members"]) == DEFAULT_MEMBERS and tuple(spec["labels"]) == FER_LABELS
    coef, intercept = np.asarray(spec["coef"]), np.asarray(spec["intercept"])
    assert coef.shape == (7, 14) and intercept.shape == (7,) and np.isfinite(coef).all()
    # fitted on the validation split only, with the C its own cross-validation chose
    assert spec["fitted_on"].startswith("FER2013 PublicTest, 3589 faces")
    assert spec["cv_accuracy_by_C"][str(spec["C"])] == max(spec["cv_accuracy_by_C"].values())
    # a real fit: each class leans on its own members' log-probabilities (diagonals), not a constant
    for k in range(7):
        assert coef[k, k] > 0 and coef[k, 7 + k] > 0
    assert not np.allclose(coef, coef[0])
    digest = hashlib.sha256(COMBINER.read_bytes()).hexdigest()
    readme = (REPO / "weights" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| {COMBINER.name} "))
    assert digest in row and "scripts/fit_emotion_combiner.py" in row and "PublicTest" in row


def test_default_ensemble_applies_the_combiner_to_flip_averaged_log_probabilities(faces, spec):
    from smartmirror.emotion.catalog import load_model
    from smartmirror.emotion.spec import DEFAULT_MODEL

    assert DEFAULT_MODEL == "emotion_ensemble"
    ensemble = load_model(None)
    assert ensemble.learned and ensemble.flip
    with torch.inference_mode():
        features = _member_features(faces)
        got = torch.softmax(ensemble(faces), 1).numpy()
        np.testing.assert_allclose(ensemble.member_log_probabilities(faces).numpy(), features.numpy(), atol=1e-4)
        coef = torch.tensor(spec["coef"])
        expected = torch.softmax(features @ coef.T + torch.tensor(spec["intercept"]), 1).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        # what a broken combiner would give differs from that by far more than the tolerance
        wrong = {
            "transposed": features[:, :7] @ coef[:, :7] + features[:, 7:] @ coef[:, 7:],
            "members swapped": torch.cat([features[:, 7:], features[:, :7]], 1) @ coef.T,
            "no intercept": features @ coef.T,
            "probabilities averaged": torch.log(0.5 * features.exp()[:, :7] + 0.5 * features.exp()[:, 7:]),
        }
        for name, logits in wrong.items():
            assert np.abs(torch.softmax(logits, 1).numpy() - got).max() > 0.01, name
        # one view alone (the live analyzer's per-frame pass) goes through the same combiner
        one = torch.softmax(ensemble(faces, flip=False), 1)
        assert not torch.allclose(one, torch.from_numpy(got), atol=1e-3)


def test_plain_mean_stays_selectable_and_other_members_use_it(faces):
    from smartmirror.emotion.catalog import create_model

    learned = create_model("emotion_ensemble", pretrained=True)
    mean = create_model("emotion_ensemble", pretrained=True, combiner="mean")
    assert learned.learned and not mean.learned
    with torch.inference_mode():
        assert np.abs(torch.softmax(learned(faces), 1).numpy() - torch.softmax(mean(faces), 1).numpy()).max() > 0.01
    single = create_model("emotion_ensemble", pretrained=True, members=("face_expression_net",))
    assert not single.learned


def test_a_combiner_for_other_members_or_a_broken_file_is_refused(tmp_path, spec):
    from smartmirror.emotion.catalog import create_model

    with pytest.raises(ValueError, match="members"):
        create_model("emotion_ensemble", members=("face_expression_net",), combiner=str(COMBINER))
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps({**spec, "members": spec["members"][::-1]}))
    with pytest.raises(ValueError, match="members"):
        create_model("emotion_ensemble", combiner=str(swapped))
    short = tmp_path / "short.json"
    short.write_text(json.dumps({**spec, "coef": spec["coef"][:6]}))
    with pytest.raises(ValueError, match="coef"):
        create_model("emotion_ensemble", combiner=str(short))
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps({**spec, "intercept": [float("nan")] * 7}))
    with pytest.raises(ValueError, match="non-finite"):
        create_model("emotion_ensemble", combiner=str(nan))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json")
    with pytest.raises(ValueError, match="readable"):
        create_model("emotion_ensemble", combiner=str(garbage))
    with pytest.raises(FileNotFoundError):
        create_model("emotion_ensemble", combiner=str(tmp_path / "missing.json"))
