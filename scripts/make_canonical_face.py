"""Build weights/canonical_face.npy: a frontal, level 3-D face in FaceMesh's landmark geometry.

MediaPipe 0.10.21's wheel does not ship canonical_face_model.obj, so head pose uses a canonical face made here:
FaceMesh's 478 refined landmarks (x, y in pixels, z in the same scale) of the public-domain astronaut portrait
(scikit-image), centred on the nose tip, scaled to an inter-ocular distance of 63 mm, and rotated so that solvePnP
of the portrait against it gives the identity rotation (a few fixed-point steps). Zero yaw, pitch and roll is
thus defined as this frontal portrait's pose: a person facing the camera.

Run: .venv/bin/python scripts/make_canonical_face.py
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from smartmirror.face import FaceTracker


def main() -> None:
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(image)
    points = face.landmarks_px.astype(np.float64)
    canonical = points - points[1]
    canonical *= 63.0 / np.linalg.norm(canonical[473] - canonical[468])
    height, width = image.shape[:2]
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    for _ in range(5):
        image_points = np.ascontiguousarray(points[:468, :2])
        ok, rvec, _ = cv2.solvePnP(canonical[:468], image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        rotation, _ = cv2.Rodrigues(rvec)
        canonical = canonical @ rotation.T  # apply the portrait's rotation to the model
        print("residual rotation (deg):", np.round(np.rad2deg(np.linalg.norm(rvec)), 3))
    out = Path(__file__).resolve().parents[1] / "weights" / "canonical_face.npy"
    np.save(out, canonical[:468].astype(np.float32))
    print(f"wrote {out} (468 points, mm, OpenCV camera axes)")


if __name__ == "__main__":
    main()
