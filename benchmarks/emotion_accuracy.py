"""Emotion accuracy and per-class recall on public FER2013 (PrivateTest) and CK+ copies, per model.

Each data set is a folder per class (``<dir>/<class>/*.png|jpg``; class names as the data set spells them:
"anger", "sadness", ... are normalised, classes outside the seven FER classes such as CK+'s "contempt" are left
out and counted). The images are used as they are (FER2013 and CK+48 are already face crops, 48x48 grey) through
each model's own preprocessing (``EmotionPredictor.prepare``). Where the copies came from: tests/data/README.md.

Our FER2013 PrivateTest copy is the whole split, 3,589 faces (angry 491, disgust 55, fear 528, happy 879,
sad 594, surprise 416, neutral 626: the official counts), JPEG-exported; it holds 3,572 distinct images (16 groups
of pixel-identical faces, 17 extra copies, 2 of the groups under two labels). A "2,760 faces" figure quoted
elsewhere is not this split and cannot be rebuilt from it; the reported figure is always the full copy. CK+ (CK+48)
has 981 faces, 927 of the seven FER classes. The default ensemble's combiner is fitted on FER2013 PublicTest only
(``scripts/fit_emotion_combiner.py``), never on these two sets.

With ``--face-crop`` each image also goes the live app's way: upscaled to 192x192, tracked by FaceMesh and cut by
the app's eye-levelled crop (``EmotionPredictor.crop``); faces FaceMesh does not find are counted and left out
(the live app never classifies those), and both figures are printed.

Run:
    .venv/bin/python benchmarks/emotion_accuracy.py --fer2013 /work/data/fer2013/PrivateTest \\
        --ckplus /work/data/ckplus [--models mini_xception_fer2013 face_expression_net emotion_ensemble]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")

from smartmirror.emotion.folders import load_folder_per_class  # noqa: E402
from smartmirror.emotion.inference import EmotionPredictor  # noqa: E402
from smartmirror.emotion.labels import FER_LABELS  # noqa: E402

DEFAULT_MODELS = ("mini_xception_fer2013", "face_expression_net", "emotion_ensemble")


def predict_all(predictor: EmotionPredictor, images: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """(n, 7) probabilities in FER_LABELS order."""
    rows = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([predictor.prepare(image) for image in images[start : start + batch_size]])
        for prediction in predictor.predict_batch(batch):
            rows.append([prediction.probabilities[label] for label in FER_LABELS])
    return np.asarray(rows)


def track_faces(images: list[np.ndarray], side: int = 192) -> list[tuple[np.ndarray, object] | None]:
    """(BGR image, FaceMesh observation) per grey image, upscaled to ``side``; None where no face is found."""
    from smartmirror.face import FaceTracker

    out = []
    with FaceTracker(static_image_mode=True) as tracker:
        for image in images:
            bgr = cv2.cvtColor(cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
            face = tracker.process(bgr)
            out.append(None if face is None else (bgr, face))
    return out


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Accuracy and recall per class present in ``labels``."""
    predicted = probabilities.argmax(axis=1)
    recall = {
        FER_LABELS[k]: round(float((predicted[labels == k] == k).mean()), 3) for k in sorted(set(labels.tolist()))
    }
    return {"accuracy": round(float((predicted == labels).mean()), 4), "n": int(len(labels)), "recall": recall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, help="FER2013 PrivateTest, a folder per class")
    parser.add_argument("--ckplus", type=Path, help="CK+ (CK+48 layout), a folder per class")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--face-crop", action="store_true", help="also score the live path (FaceMesh + app crop)")
    args = parser.parse_args()
    sets = {name: path for name, path in (("FER2013 PrivateTest", args.fer2013), ("CK+", args.ckplus)) if path}
    if not sets:
        raise SystemExit("give --fer2013 and/or --ckplus")

    data = {}
    for name, path in sets.items():
        try:
            images, labels, skipped = load_folder_per_class(path)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        data[name] = (images, labels)
        left_out = f", left out {skipped}" if skipped else ""
        print(f"{name}: {len(images)} faces from {path}{left_out}")

    tracked = {}
    if args.face_crop:
        for name, (images, _labels) in data.items():
            tracked[name] = track_faces(images)
            found = sum(t is not None for t in tracked[name])
            print(f"{name}: FaceMesh found {found} of {len(images)} faces (192x192 upscale)")

    results: dict[str, dict[str, object]] = {}
    for model in args.models:
        predictor = EmotionPredictor(model)
        runs = [(name, images, labels) for name, (images, labels) in data.items()]
        for name, faces in tracked.items():
            keep = [i for i, t in enumerate(faces) if t is not None]
            crops = [predictor.crop(*faces[i]) for i in keep]
            runs.append((f"{name} (app crop)", crops, data[name][1][keep]))
        for name, images, labels in runs:
            start = time.perf_counter()
            result = scores(predict_all(predictor, images), labels)
            result["seconds"] = round(time.perf_counter() - start, 1)
            results.setdefault(model, {})[name] = result
            recall = ", ".join(f"{k} {v:.2f}" for k, v in result["recall"].items())
            print(f"{model:24s} {name:31s} accuracy {result['accuracy']:.4f} (n={result['n']}); recall {recall}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
