"""Make the FaceExpressionNet parity fixture: real face crops and the original JavaScript model's probabilities.

Faces: the astronaut portrait (scikit-image, public domain) cropped by the app's own FaceMesh crop at 112x112,
its mirror image and a darkened copy, plus five of scikit-image's LFW faces (grey, upscaled). They are run once
through face-api.js itself in Node (``scripts/face_api_reference.cjs``, tfjs CPU backend) and saved with the
probabilities to ``tests/fixtures/face_api_expression_reference.npz`` for ``tests/test_emotion_faceapi.py``.

Set-up (npm registry; Node 20):

    cd /tmp/faceapi && npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
    npm init -y && npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
    .venv/bin/python scripts/face_api_reference.py /tmp/faceapi/package
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "face_api_expression_reference.npz"
SIDE = 112


def reference_faces() -> tuple[list[str], np.ndarray]:
    """(names, RGB uint8 faces (n, 112, 112, 3))."""
    from skimage import data

    from smartmirror.emotion.inference import EmotionPredictor
    from smartmirror.face import FaceTracker
    from smartmirror.synth import default_face_image

    image = default_face_image()
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(image)
    crop = cv2.cvtColor(EmotionPredictor("face_expression_net").crop(image, face), cv2.COLOR_BGR2RGB)
    faces = {
        "astronaut": crop,
        "astronaut_flipped": crop[:, ::-1],
        "astronaut_dark": (crop * 0.55).astype(np.uint8),
    }
    for i in (0, 3, 7, 12, 21):  # the first 100 of lfw_subset are faces
        grey = cv2.resize((data.lfw_subset()[i] * 255).round().astype(np.uint8), (SIDE, SIDE), cv2.INTER_LINEAR)
        faces[f"lfw_{i}"] = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return list(faces), np.stack([np.ascontiguousarray(f) for f in faces.values()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package_dir", type=Path, help="the unpacked @vladmandic/face-api 1.7.15 npm package")
    parser.add_argument("--node", default="node")
    args = parser.parse_args()

    names, faces = reference_faces()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "faces.u8"
        raw.write_bytes(faces.tobytes())
        result = subprocess.run(
            [args.node, str(REPO / "scripts" / "face_api_reference.cjs"), str(args.package_dir), str(raw),
             str(len(faces))],
            check=True, capture_output=True, text=True, timeout=300,
        )
    output = json.loads(result.stdout)
    probabilities = np.asarray(output["probabilities"], dtype=np.float32)
    assert probabilities.shape == (len(faces), 7)
    np.savez_compressed(
        OUT,
        names=np.array(names),
        faces_rgb=faces,
        probabilities=probabilities,
        labels=np.array(output["labels"]),
        source=np.array(f"@vladmandic/face-api 1.7.15, tfjs {output['tfjs']} {output['backend']} backend"),
    )
    print(f"backend {output['backend']}, tfjs {output['tfjs']}, labels {output['labels']}")
    for name, row in zip(names, probabilities, strict=True):
        print(f"{name:20s} " + " ".join(f"{p:.4f}" for p in row))
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
