"""The flow face tracker on real face pixels: it agrees with FaceMesh on every frame, follows known motion,
re-meshes when the flow loses the face, and costs a fraction of the full tracker's FaceMesh passes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartmirror.face import REGIONS, SKIN_REGIONS, FaceTracker
from smartmirror.face_track import FlowFaceTracker
from smartmirror.frames import read_video_packets

WEBCAM_CLIP = Path(__file__).parent / "data" / "physrecorder_webcam_10s.mp4"
SKIN = sorted({i for name in SKIN_REGIONS for i in REGIONS[name]})


@pytest.fixture(scope="module")
def webcam_frames() -> list[np.ndarray]:
    """The first 6 s of a real webcam recording (a seated man with glasses, 640x480, 30 frames/s)."""
    return [p.image for p in read_video_packets(WEBCAM_CLIP, max_frames=180)]


def _gaps_iod(reference, tracked) -> np.ndarray:
    """Mean distance of the skin-region landmarks per frame, in inter-ocular distances of the reference."""
    return np.array([np.linalg.norm(a.landmarks_px[SKIN, :2] - b.landmarks_px[SKIN, :2], axis=1).mean()
                     / a.inter_ocular_px for a, b in zip(reference, tracked, strict=True)])


def test_flow_tracker_keeps_the_full_trackers_skin_regions_on_a_real_webcam_clip(webcam_frames):
    from smartmirror.vitals.signal import skin_roi_mean_rgb

    with FaceTracker() as full:
        reference = [full.process(image) for image in webcam_frames]
    with FlowFaceTracker(mesh_every=5) as tracker:
        tracked = [tracker.process(image) for image in webcam_frames]
        meshes = tracker.mesh_passes
    assert all(f is not None for f in reference) and all(f is not None for f in tracked)
    assert meshes <= len(webcam_frames) / 5 + 3  # the point: FaceMesh on a fifth of the frames
    gaps = _gaps_iod(reference, tracked)
    assert gaps.mean() < 0.03 and np.percentile(gaps, 95) < 0.06, (gaps.mean(), np.percentile(gaps, 95))
    # the skin the pulse is read from: the same pixels within about a grey level on average
    colours = np.array([[skin_roi_mean_rgb(image, a).rgb, skin_roi_mean_rgb(image, b).rgb]
                        for image, a, b in zip(webcam_frames, reference, tracked, strict=True)])
    difference = np.abs(colours[:, 0] - colours[:, 1])
    assert difference.mean() < 2.0 and np.percentile(difference, 95) < 5.0
    for a, b in zip(reference[::30], tracked[::30], strict=True):
        assert b.landmarks_px.shape == (478, 3) and b.num_faces == 1 and b.presence_score > 0.5
        # the head turns +-18 degrees here; between meshes the shape follows one mesh interval late
        assert abs(a.yaw_deg - b.yaw_deg) < 8 and abs(a.roll_deg - b.roll_deg) < 2
        assert np.abs(np.array(a.bbox) - np.array(b.bbox)).max() < 12


def _warp(image: np.ndarray, angle_deg: float, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_deg, 1.0)
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE), matrix


def test_flow_follows_a_known_head_motion_between_meshes(webcam_frames):
    """A real frame moved by a known sub-pixel shift and rotation: the flow moves the mesh the same way."""
    first = webcam_frames[0]
    with FaceTracker(static_image_mode=True) as still:
        truth0 = still.process(first).landmarks_px[:, :2].astype(np.float64)
    with FlowFaceTracker(mesh_every=1000) as tracker:  # one mesh, then the flow alone
        start = tracker.process(first)
        errors = []
        for step in range(1, 25):
            image, matrix = _warp(first, 0.15 * step, (0.7 * step, -0.35 * step))
            face = tracker.process(image)
            assert face is not None
            expected = start.landmarks_px[:, :2] @ matrix[:, :2].T + matrix[:, 2]
            errors.append(np.linalg.norm(face.landmarks_px[SKIN, :2] - expected[SKIN], axis=1).mean())
        assert tracker.mesh_passes == 1
    assert max(errors) < 0.5, errors  # pixels, after up to 17 px and 3.6 degrees of motion
    assert np.linalg.norm(start.landmarks_px[SKIN, :2] - truth0[SKIN], axis=1).mean() < 3


def test_a_cut_or_a_lost_face_runs_the_mesh_again(webcam_frames, astronaut_bgr):
    with FlowFaceTracker(mesh_every=5) as tracker:
        for image in webcam_frames[:3]:
            assert tracker.process(image) is not None
        assert tracker.mesh_passes == 1
        # a cut to another face elsewhere in the frame: the flow cannot hold it, the mesh runs at once
        other = np.full_like(webcam_frames[0], 90)
        other[:512, 100:612][:480] = astronaut_bgr[:480]
        face = tracker.process(other)
        assert tracker.mesh_passes == 2
        assert face is not None and abs(face.bbox[0] - (100 + 140)) < 60  # the astronaut's face, not the last one
        # the face leaves: None, and the tracker looks again within mesh_every frames when it is back
        dark = np.zeros_like(webcam_frames[0])
        assert all(tracker.process(dark) is None for _ in range(7))
        found = [tracker.process(image) is not None for image in webcam_frames[10:20]]
        assert any(found[:5]) and all(found[found.index(True):])


def test_two_faces_are_counted_by_the_detector(astronaut_bgr):
    from test_face import two_faces_frame

    frame = two_faces_frame(astronaut_bgr)
    with FlowFaceTracker(mesh_every=5, detect_every=5) as tracker:
        faces = [tracker.process(frame) for _ in range(6)]
    assert all(f is not None and f.num_faces == 2 for f in faces)
    assert all(f.bbox[0] + f.bbox[2] < 330 for f in faces)  # the larger face, on the left


def test_rejects_bad_arrays_and_bad_settings():
    with FlowFaceTracker() as tracker:
        with pytest.raises(ValueError):
            tracker.process(np.zeros((10, 10), np.uint8))
        with pytest.raises(ValueError):
            tracker.process(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        FlowFaceTracker(mesh_every=0)
