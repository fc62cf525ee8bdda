"""`smartmirror train fatigue DIR` end to end on a tiny DDD-layout folder of real images: astronaut face crops
with open eyes (Non Drowsy) and with the eyes painted shut (Drowsy)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import typer
from fatigue_sequences import paint_closed_eyes
from typer.testing import CliRunner

from smartmirror.cli.train_fatigue import train_fatigue
from smartmirror.fatigue import fatigue_features, load_mlp
from smartmirror.fatigue.training import DatasetError, find_ddd_images

PER_CLASS = 7


def _app() -> typer.Typer:
    app = typer.Typer()
    train = typer.Typer()
    train.command("fatigue")(train_fatigue)
    app.add_typer(train, name="train")
    return app


def ddd_crop(image: np.ndarray, face, rng: np.random.Generator) -> np.ndarray:
    """A 227x227 face crop like the DDD's, with a random shift, scale, rotation and brightness."""
    x, y, w, h = face.bbox
    cx, cy = x + w / 2 + rng.uniform(-6, 6), y + h / 2 + rng.uniform(-6, 6)
    side = max(w, h) * rng.uniform(1.15, 1.35)
    angle = rng.uniform(-6, 6)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 227 / side)
    matrix[:, 2] += (113.5 - cx, 113.5 - cy)
    crop = cv2.warpAffine(image, matrix, (227, 227), borderMode=cv2.BORDER_REFLECT)
    return np.clip(crop.astype(np.int16) + int(rng.integers(-20, 21)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ddd_folder(tmp_path_factory, astronaut_bgr, astronaut_face):
    root = tmp_path_factory.mktemp("ddd") / "Driver Drowsiness Dataset (DDD)"
    shut = paint_closed_eyes(astronaut_bgr, astronaut_face)
    rng = np.random.default_rng(0)
    for folder, image in (("Non Drowsy", astronaut_bgr), ("Drowsy", shut)):
        (root / folder).mkdir(parents=True)
        for i in range(PER_CLASS):
            cv2.imwrite(str(root / folder / f"{folder[0]}{i:03d}.png"), ddd_crop(image, astronaut_face, rng))
    (root / "Drowsy" / "notes.txt").write_text("not an image")
    (root / "Drowsy" / "broken.png").write_bytes(b"not a png")
    return root.parent


def test_train_fatigue_on_a_ddd_folder_of_real_images(ddd_folder, tmp_path, astronaut_face):
    images = find_ddd_images(ddd_folder)
    assert {k: len(v) for k, v in images.items()} == {"drowsy": PER_CLASS + 1, "non_drowsy": PER_CLASS}
    out = tmp_path / "models" / "fatigue_mlp.joblib"
    result = CliRunner().invoke(_app(), ["train", "fatigue", str(ddd_folder), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model_path"] == str(out) and out.is_file()
    assert report["images"] == 2 * PER_CLASS + 1
    assert report["skipped_no_face"] <= 3  # the broken file at least
    assert report["skipped_no_face"] >= 1
    assert report["n_drowsy"] + report["n_non_drowsy"] == report["images"] - report["skipped_no_face"]
    assert report["features"] == ["ear", "mar", "yawn_flag", "tilt_deg", "pitch_ratio"]
    model = load_mlp(out)
    assert model.metadata["trained_on"] == str(ddd_folder.resolve())
    open_row = fatigue_features(astronaut_face).mlp_vector()
    shut_row = open_row.copy()
    shut_row[0] = 0.2 * open_row[0]
    p_open, p_shut = model.predict_drowsy(np.stack([open_row, shut_row]))
    assert p_shut > 0.5 > p_open


def test_train_fatigue_table_output_and_bad_folders(ddd_folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        _app(), ["train", "fatigue", str(ddd_folder), "-o", str(tmp_path / "m.joblib"), "--limit", "6"]
    )
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.stdout and "m.joblib" in result.stdout
    missing = runner.invoke(_app(), ["train", "fatigue", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "No such folder" in missing.output and "Traceback" not in missing.output
    (tmp_path / "only" / "Drowsy").mkdir(parents=True)
    one_class = runner.invoke(_app(), ["train", "fatigue", str(tmp_path / "only"), "--json"])
    assert one_class.exit_code == 2
    assert json.loads(one_class.stdout)["error"]["code"] == "bad_dataset"
    assert "non_drowsy" in one_class.stdout
    with pytest.raises(DatasetError, match="hold no images"):
        (tmp_path / "empty" / "Drowsy").mkdir(parents=True)
        (tmp_path / "empty" / "non-drowsy").mkdir(parents=True)
        find_ddd_images(tmp_path / "empty")
