"""The face tracker's cheap paths give what the plain ones gave: landmarks read from the protobuf's bytes, the head
pose computed on first use, MediaPipe imported without its drawing and audio parts, the one-face mesh."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker, head_pose_deg, landmarks_array
from smartmirror.mediapipe_import import mediapipe
from smartmirror.vitals.signal import uint8_median


@pytest.fixture(scope="module")
def mesh_result(astronaut_bgr):
    mp = mediapipe()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        faces = mesh.process(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    assert faces
    return faces[0]


def test_landmarks_from_the_wire_bytes_equal_the_point_by_point_read(mesh_result):
    slow = np.array([(p.x, p.y, p.z) for p in mesh_result.landmark], dtype=np.float32)
    fast = landmarks_array(mesh_result)
    assert fast.shape == (478, 3) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, slow)
    other = type(mesh_result)()
    other.CopyFrom(mesh_result)
    other.landmark[5].visibility = 0.5  # another layout: read point by point, the same numbers
    np.testing.assert_array_equal(landmarks_array(other), slow)


def test_head_pose_is_computed_on_first_use_or_taken_as_given(astronaut_face):
    expected = head_pose_deg(astronaut_face.landmarks_px, astronaut_face.image_size)
    assert (astronaut_face.yaw_deg, astronaut_face.pitch_deg, astronaut_face.roll_deg) == pytest.approx(expected)
    import dataclasses

    given = dataclasses.replace(astronaut_face, pose_deg=(10.0, -5.0, 2.0), _masks={})
    assert (given.yaw_deg, given.pitch_deg, given.roll_deg) == (10.0, -5.0, 2.0)


def test_mediapipe_is_imported_without_matplotlib_and_every_name_still_works():
    code = (
        "import sys\n"
        "from smartmirror.mediapipe_import import mediapipe\n"
        "mp = mediapipe()\n"
        "assert 'matplotlib' not in sys.modules and 'sounddevice' not in sys.modules\n"
        "mp.solutions.face_mesh.FaceMesh(static_image_mode=True).close()\n"
        "import mediapipe as again\n"
        "assert again is mp and mp.__version__ == '0.10.21'\n"
        "from mediapipe.python.solutions import drawing_utils\n"  # imported on first use
        "assert mp.solutions.drawing_utils is drawing_utils and mp.tasks.vision.FaceLandmarker\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_video_tracker_follows_one_face_with_the_one_face_mesh_and_counts_two(astronaut_bgr):
    from test_face import two_faces_frame

    with FaceTracker(static_image_mode=False) as tracker:
        one = [tracker.process(astronaut_bgr) for _ in range(3)]
        assert tracker._one_mesh is not None and tracker._mesh is None and not tracker._several
        tracker.reset()
        two = [tracker.process(two_faces_frame(astronaut_bgr)) for _ in range(3)]
        assert tracker._several  # the detector saw two: the several-faces mesh follows the larger
    assert all(f is not None and f.num_faces == 1 for f in one)
    assert all(f is not None and f.num_faces == 2 and f.bbox[0] + f.bbox[2] < 330 for f in two)


@pytest.mark.parametrize("size", [1, 2, 7, 10, 4001])
def test_uint8_median_is_numpys(size):
    values = np.random.default_rng(size).integers(0, 256, size=size).astype(np.uint8)
    assert uint8_median(values) == float(np.median(values))
    assert np.isnan(uint8_median(np.zeros(0, np.uint8)))
