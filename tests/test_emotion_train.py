"""Training the NovelEmotionModel end to end on tiny generated datasets (folder-per-class and AffectNet-YOLO).

The tiny timm backbone "test_efficientnet" at 48 px stands in for EfficientNet-B3 at 224 px to keep this fast on
CPU; everything else (discovery, augmentation, class weights, Adam, plateau scheduler, checkpoints, resume, CLI)
is the real code path. Training runs single-threaded (``torch_threads(1)``, restored afterwards): on a busy
2-core machine OpenMP's second thread only adds waiting.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartmirror.emotion.inference import torch_threads

CLASSES = ("happy", "sad", "neutral")


def cartoon_face(label: str, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A drawn face whose mouth shows the class: smile, frown or straight line; random colours, shift, noise."""
    image = np.full((size, size, 3), int(rng.integers(150, 230)), np.uint8)
    cx, cy = size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4))
    radius = int(size * 0.38)
    cv2.circle(image, (cx, cy), radius, tuple(int(v) for v in rng.integers(120, 220, 3)), -1)
    for dx in (-radius // 2.5, radius // 2.5):
        cv2.circle(image, (int(cx + dx), cy - radius // 4), max(2, radius // 8), (30, 30, 30), -1)
    mouth_y, half_width, thickness = cy + radius // 2, radius // 2 + 2, max(2, size // 16)
    if label == "happy":
        cv2.ellipse(image, (cx, mouth_y - 6), (half_width, 9), 0, 0, 180, (20, 20, 120), thickness)
    elif label == "sad":
        cv2.ellipse(image, (cx, mouth_y + 5), (half_width, 9), 0, 180, 360, (20, 20, 120), thickness)
    else:
        cv2.line(image, (cx - half_width, mouth_y), (cx + half_width, mouth_y), (20, 20, 120), thickness)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("emotion_folders")
    rng = np.random.default_rng(0)
    for label in CLASSES:
        (root / label.capitalize()).mkdir()
        for i in range(10):
            cv2.imwrite(str(root / label.capitalize() / f"{i}.png"), cartoon_face(label, rng))
    return root


@pytest.fixture(scope="module")
def yolo_dataset(tmp_path_factory) -> Path:
    """Ultralytics layout: faces placed in a larger picture, boxes in labels/*.txt, names in data.yaml."""
    root = tmp_path_factory.mktemp("emotion_yolo")
    rng = np.random.default_rng(1)
    (root / "data.yaml").write_text("nc: 3\nnames: ['Happy', 'Sadness', 'Neutral']\n")
    for split, count in (("train", 6), ("valid", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for class_id, label in enumerate(CLASSES):
            for i in range(count):
                canvas = np.full((120, 160, 3), 200, np.uint8)
                x, y = int(rng.integers(0, 96)), int(rng.integers(0, 56))
                canvas[y : y + 64, x : x + 64] = cartoon_face(label, rng)
                name = f"{label}_{i}"
                cv2.imwrite(str(root / split / "images" / f"{name}.jpg"), canvas)
                box = f"{class_id} {(x + 32) / 160:.5f} {(y + 32) / 120:.5f} {64 / 160:.5f} {64 / 120:.5f}"
                (root / split / "labels" / f"{name}.txt").write_text(box + "\n")
    cv2.imwrite(str(root / "train" / "images" / "unlabelled.jpg"), np.zeros((50, 50, 3), np.uint8))
    return root


def _config(**overrides):
    from smartmirror.emotion.train import TrainConfig

    settings = dict(
        model="novel_emotion_b3",
        backbone="test_efficientnet",
        image_size=48,
        batch_size=8,
        lr=1e-3,
        early_stopping_patience=20,
    )
    return TrainConfig(**{**settings, **overrides})


def test_discovers_both_layouts(folder_dataset, yolo_dataset):
    from smartmirror.emotion.data import discover_dataset, load_face_image

    folders = discover_dataset(folder_dataset, val_fraction=0.2)
    assert folders.layout == "folders" and folders.labels == ("neutral", "happy", "sad")  # label order, lower case
    assert len(folders.train) == 24 and len(folders.val) == 6 and folders.class_counts("val") == [2, 2, 2]
    assert not {s.path for s in folders.train} & {s.path for s in folders.val}

    yolo = discover_dataset(yolo_dataset)
    assert yolo.layout == "yolo" and yolo.labels == ("happy", "sad", "neutral")  # data.yaml order, normalised
    assert len(yolo.train) == 18 and len(yolo.val) == 6  # the unlabelled image is skipped
    sample = yolo.train[0]
    face = load_face_image(sample, (48, 48), 3)
    assert face.shape == (48, 48, 3)
    # the crop holds the drawn face, not the flat background of the canvas
    assert face.std() > 20


def test_discovery_errors_are_clear(tmp_path):
    from smartmirror.emotion.data import DatasetError, discover_dataset

    with pytest.raises(DatasetError, match="not found"):
        discover_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no class folders"):
        discover_dataset(tmp_path)
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        discover_dataset(tmp_path)
    yolo = tmp_path / "yolo"
    (yolo / "train" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="data.yaml"):
        discover_dataset(yolo)


def test_augmentations_keep_shape_and_are_seeded():
    from smartmirror.emotion.augment import AugmentConfig, augment_face

    rng = np.random.default_rng(0)
    face = cartoon_face("happy", rng)
    everything = AugmentConfig(
        flip_p=1.0, brightness_contrast_p=1.0, color_jitter_p=1.0, motion_blur_p=1.0, noise_p=1.0, shadow_p=1.0
    )
    for image in (face, cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)):
        out = augment_face(image, np.random.default_rng(5), everything)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.array_equal(out, augment_face(image, np.random.default_rng(5), everything))
        assert not np.array_equal(out, augment_face(image, np.random.default_rng(6), everything))
        assert np.abs(out.astype(int) - image).mean() > 5
    only_flip = AugmentConfig(
        flip_p=1.0, brightness_contrast_p=0.0, color_jitter_p=0.0, motion_blur_p=0.0, noise_p=0.0, shadow_p=0.0
    )
    flipped = augment_face(face, np.random.default_rng(0), only_flip)
    assert np.array_equal(flipped, face[:, ::-1])


def test_class_weights_are_inverse_frequency():
    from smartmirror.emotion.train import class_weights

    weights = class_weights([30, 10, 0, 20]).tolist()
    assert weights == pytest.approx([60 / 90, 60 / 30, 0.0, 60 / 60])


def test_training_lowers_the_loss_and_resumes_exactly(folder_dataset, tmp_path, astronaut_bgr, astronaut_face):
    from smartmirror.emotion import EmotionAnalyzer, predict_face
    from smartmirror.emotion.catalog import load_model
    from smartmirror.emotion.train import train_emotion

    with torch_threads(1):
        full = train_emotion(folder_dataset, tmp_path / "full", _config(epochs=9), progress=False)
        history = full.history
        assert [row["epoch"] for row in history] == list(range(1, 10))
        assert np.mean([r["train_loss"] for r in history[-2:]]) < 0.5 * history[0]["train_loss"]
        assert min(r["val_loss"] for r in history[-3:]) < history[0]["val_loss"] - 0.05  # held-out images too
        assert full.best_checkpoint.exists() and full.last_checkpoint.exists()

        # stop after 5 epochs, then resume to 9: the same numbers as the uninterrupted run
        part = train_emotion(folder_dataset, tmp_path / "part", _config(epochs=5), progress=True)
        assert len(part.history) == 5
        happy_face = cv2.cvtColor(cartoon_face("happy", np.random.default_rng(7)), cv2.COLOR_RGB2BGR)
        before = predict_face(happy_face, model=part.best_checkpoint)
        resumed = train_emotion(folder_dataset, tmp_path / "part", _config(epochs=9), progress=False)
        assert resumed.resumed_from_epoch == 5 and len(resumed.history) == 9
        assert resumed.best_epoch > 5 and resumed.best_checkpoint == part.best_checkpoint
        assert predict_face(happy_face, model=part.best_checkpoint) != before  # the rewritten file is reloaded
        for a, b in zip(resumed.history, history, strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)

        # the trained checkpoint replaces the default model everywhere
        model = load_model(full.best_checkpoint)
        assert model.cfg.labels == ("neutral", "happy", "sad") and model.cfg.input_size == (48, 48)
        rng = np.random.default_rng(42)
        probabilities = predict_face(
            cv2.cvtColor(cartoon_face("happy", rng), cv2.COLOR_RGB2BGR), model=full.best_checkpoint
        )
        assert set(probabilities) == {"neutral", "happy", "sad"}
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        from smartmirror.frames import FramePacket

        analyzer = EmotionAnalyzer(model=str(full.best_checkpoint))
        state = analyzer.update(FramePacket(0.0, astronaut_bgr), astronaut_face)
        assert set(state.probabilities) == {"neutral", "happy", "sad", "tired"}
        assert -1 <= state.valence <= 1 and -1 <= state.arousal <= 1  # from the model's own heads

    with pytest.raises(ValueError, match="trained as"):
        train_emotion(folder_dataset, tmp_path / "full", _config(model="novel_emotion_b0", epochs=10), progress=False)


def test_cli_trains_on_the_affectnet_yolo_layout(yolo_dataset, tmp_path):
    import typer
    from typer.testing import CliRunner

    from smartmirror.cli.train_emotion import train_emotion

    app = typer.Typer()
    app.command()(train_emotion)
    app.command("other")(lambda: None)  # a second command keeps typer from collapsing the app
    runner = CliRunner()
    args = ["train-emotion", str(yolo_dataset), "--out", str(tmp_path / "run"), "--backbone", "test_efficientnet"]
    args += ["--image-size", "48", "--epochs", "2", "--batch-size", "6", "--json"]
    with torch_threads(1):
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["labels"] == ["happy", "sad", "neutral"] and report["class_counts"] == [6, 6, 6]
    assert len(report["history"]) == 2 and Path(report["best_checkpoint"]).exists()

    missing = runner.invoke(app, ["train-emotion", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "not found" in missing.output and "Traceback" not in missing.output
