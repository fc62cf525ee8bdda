"""Fit the bundled emotion ensemble's combiner on FER2013's PublicTest split -> weights/emotion_ensemble_combiner.json.

The combiner is a multinomial logistic regression (scikit-learn) over 14 features per face: the log-probabilities
of mini-Xception and FaceExpressionNet (``EmotionEnsemble.member_log_probabilities``: each member in the FER class
order, averaged over the face and its mirror image, exactly as the ensemble computes them at run time). Its L2
strength is chosen by 5-fold stratified cross-validation on the same split (accuracy), then refitted on all of it.

Only the FER2013 *validation* split (PublicTest) is used; PrivateTest and CK+ stay untouched for the reported
figures (``benchmarks/emotion_accuracy.py``). Where the copy comes from: tests/data/README.md.

Run:
    .venv/bin/python scripts/fit_emotion_combiner.py /work/data/fer2013/PublicTest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings

import numpy as np
import sklearn
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from smartmirror.emotion.catalog import create_model
from smartmirror.emotion.ensemble import COMBINER_FORMAT, DEFAULT_COMBINER, DEFAULT_MEMBERS
from smartmirror.emotion.folders import load_folder_per_class
from smartmirror.emotion.inference import EmotionPredictor
from smartmirror.emotion.labels import FER_LABELS
from smartmirror.paths import WEIGHTS_DIR

#: Inverse L2 strengths tried (scikit-learn's C; the loss is summed over the 3,589 faces).
CS = (0.001, 0.003, 0.01, 0.03, 0.1, 1.0)


def member_features(images: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
    """(n, 14) float64: the mean-combined ensemble's member log-probabilities, with flip TTA, per grey image."""
    ensemble = create_model("emotion_ensemble", pretrained=True, combiner="mean")
    predictor = EmotionPredictor()
    predictor.model_ = ensemble  # its prepare(): the benchmark's preprocessing by the ensemble's cfg (112x112 RGB)
    rows = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = np.stack([predictor.prepare(image) for image in images[start : start + batch_size]])
            rows.append(ensemble.member_log_probabilities(torch.from_numpy(batch), flip=True).double().numpy())
    return np.concatenate(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("public_test", help="FER2013 PublicTest, a folder per class")
    parser.add_argument("--out", default=str(WEIGHTS_DIR / DEFAULT_COMBINER))
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        images, labels, _skipped = load_folder_per_class(args.public_test)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    counts = {FER_LABELS[k]: int((labels == k).sum()) for k in range(len(FER_LABELS))}
    print(f"{len(images)} faces: {counts}")
    features = member_features(images)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    model = LogisticRegressionCV(Cs=list(CS), cv=folds, scoring="accuracy", max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9's notices about its 1.10 defaults
        model.fit(features, labels)
    if list(model.classes_) != list(range(len(FER_LABELS))):
        raise SystemExit(f"every FER class must occur in {args.public_test}")
    cv_accuracy = {str(c): round(float(a), 4) for c, a in zip(CS, model.scores_[0].mean(axis=0), strict=True)}
    chosen = float(model.C_[0])
    fitted = float((model.predict(features) == labels).mean())
    print(f"cross-validated accuracy by C: {cv_accuracy}; chosen C {chosen}; accuracy on the fit data {fitted:.4f}")
    spec = {
        "format": COMBINER_FORMAT,
        "members": list(DEFAULT_MEMBERS),
        "labels": list(FER_LABELS),
        "features": "per member (in 'members' order) log-softmax in 'labels' order, mean over face and mirror",
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "fitted_on": f"FER2013 PublicTest, {len(images)} faces {counts}",
        "C": chosen,
        "cv_accuracy_by_C": cv_accuracy,
        "scikit_learn": sklearn.__version__,
    }
    text = json.dumps(spec, indent=1) + "\n"
    with open(args.out, "w") as out:
        out.write(text)
    print(f"wrote {args.out} (sha256 {hashlib.sha256(text.encode()).hexdigest()})")


if __name__ == "__main__":
    main()
