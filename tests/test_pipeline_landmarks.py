"""Offline landmarks at a lower rate (``Pipeline.run(landmarks_every=n)``) and tracking on its own thread
(``overlap=True``), on the real astronaut portrait's clip."""

from __future__ import annotations

import dataclasses
import threading

import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.face_track import LEARNED_LANDMARKS_EVERY, landmarks_every_for
from smartmirror.frames import FramePacket, Prefetcher, read_video_packets
from smartmirror.pipeline import Pipeline
from smartmirror.registry import analyzer_specs
from smartmirror.report import analyze_video


@pytest.fixture(scope="module")
def clip(synth_clip):
    return synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, width=320, height=240)[0] / "vid.avi"


class CountingTracker:
    """A real FaceTracker that counts its calls and remembers what it said."""

    def __init__(self):
        self.tracker = FaceTracker(static_image_mode=False)
        self.calls = 0
        self.faces: list = []

    def process(self, image):
        self.calls += 1
        face = self.tracker.process(image)
        self.faces.append(face)
        return face

    def close(self):
        self.tracker.close()


def test_landmarks_every_n_frames_are_the_trackers_and_the_frames_between_are_interpolated(clip):
    packets = list(read_video_packets(clip, max_frames=61))
    tracker = CountingTracker()
    with Pipeline(analyzer_specs(["vitals"], live=False), tracker=tracker, landmarks_every=5) as pipeline:
        results = list(pipeline.run(packets))
    tracker.close()
    assert [r.packet.index for r in results] == list(range(61))  # every frame, in order
    assert tracker.calls == 13  # frames 0, 5, ..., 60 (the synthetic face does not blink)
    keyframes = results[::5]
    for result, face in zip(keyframes, tracker.faces, strict=True):  # keyframes: exactly the tracker's faces
        assert result.face is face
    for i, result in enumerate(results):
        if i % 5 == 0:
            continue
        before, after = results[i - i % 5], results[i - i % 5 + 5]
        weight = (result.t - before.t) / (after.t - before.t)
        expected = before.face.landmarks_px + weight * (after.face.landmarks_px - before.face.landmarks_px)
        np.testing.assert_allclose(result.face.landmarks_px, expected, atol=1e-4)  # linear on the timestamps
        assert 0 < weight < 1
    assert pipeline.frames == pipeline.frames_with_face == 61


class BlinkingFaceTracker:
    """Replays one real face observation, with no face on the frames listed (rule tests without a video)."""

    def __init__(self, face, missing: set[int]):
        self.face, self.missing, self.seen = face, missing, []

    def process(self, image):
        index = int(image[0, 0, 0])
        self.seen.append(index)
        if index in self.missing:
            return None
        moved = self.face.landmarks_px + np.float32([index, 0, 0])  # one pixel right per frame
        return dataclasses.replace(self.face, landmarks_px=moved, _masks={})

    def close(self):
        pass


def _numbered_packets(count: int) -> list[FramePacket]:
    packets = []
    for i in range(count):
        image = np.zeros((8, 8, 3), np.uint8)
        image[0, 0, 0] = i
        packets.append(FramePacket(t=i / 30, image=image, index=i))
    return packets


def test_frames_next_to_a_missing_face_are_tracked_and_the_others_interpolated(astronaut_face):
    tracker = BlinkingFaceTracker(astronaut_face, missing={8})
    with Pipeline([], tracker=tracker, landmarks_every=4) as pipeline:
        results = list(pipeline.run(_numbered_packets(14)))
    # 0 and 4 tracked, 1-3 interpolated; 8 has no face: 5-7 tracked too; 12 tracked, 9-11 tracked; 13 the tail
    assert tracker.seen == [0, 4, 8, 5, 6, 7, 12, 9, 10, 11, 13]
    assert [r.face is None for r in results] == [i == 8 for i in range(14)]
    for i in (1, 2, 3, 5, 9, 13):  # interpolated or tracked, each face sits where that frame's face is
        shift = results[i].face.landmarks_px[:, 0] - astronaut_face.landmarks_px[:, 0]
        np.testing.assert_allclose(shift, i, atol=1e-3)


def test_a_face_that_moves_far_between_keyframes_is_tracked_on_every_frame(astronaut_face):
    class Jumping(BlinkingFaceTracker):
        def process(self, image):
            face = super().process(image)
            index = int(image[0, 0, 0])
            jump = np.float32([100 * (index >= 2), 0, 0])  # the head moves 100 px between frames 1 and 2
            return dataclasses.replace(face, landmarks_px=face.landmarks_px + jump, _masks={})

    tracker = Jumping(astronaut_face, missing=set())
    with Pipeline([], tracker=tracker, landmarks_every=4) as pipeline:
        list(pipeline.run(_numbered_packets(5)))
    assert tracker.seen == [0, 4, 1, 2, 3]


def test_tracking_on_its_own_thread_gives_the_same_trace(clip):
    traces = []
    for overlap in (False, True):
        with Pipeline(analyzer_specs(["vitals"], live=False)) as pipeline:
            for _ in pipeline.run(read_video_packets(clip, max_frames=120), overlap=overlap):
                pass
            traces.append(pipeline.runners["vitals"].analyzer.trace())
    np.testing.assert_array_equal(traces[0].times_s, traces[1].times_s)
    np.testing.assert_array_equal(traces[0].rgb, traces[1].rgb)
    assert np.isfinite(traces[0].rgb).all()


def test_a_consumer_that_stops_early_stops_the_tracking_thread(clip):
    before = {t.name for t in threading.enumerate()}
    with Pipeline(analyzer_specs(["vitals"], live=False)) as pipeline:
        results = pipeline.run(Prefetcher(read_video_packets(clip)), overlap=True)
        for i, _ in enumerate(results):
            if i == 10:
                break
        results.close()
    assert "pipeline-track" not in {t.name for t in threading.enumerate()} - before


def test_report_with_keyframe_landmarks_reads_the_pulse_and_shape_analyzers_get_every_frame(clip):
    report = analyze_video(clip, sections=(), landmarks_every=5)
    assert report["heart_rate_bpm"] is not None and abs(report["heart_rate_bpm"] - 70) < 3
    assert landmarks_every_for(["vitals"], "pos", 5) == 5 and landmarks_every_for(["vitals"], "pos") == 1
    assert landmarks_every_for(["vitals", "fatigue"], "pos", 5) == 1  # blinks need every frame's eyelids
    # the learned methods read their detector's crop: FaceMesh at the interval measured on UBFC-rPPG
    for method, every in (("facephys-rlap", 10), ("me-rlap", 10), ("me-pure", 5)):
        assert landmarks_every_for(["vitals"], method) == LEARNED_LANDMARKS_EVERY[method] == every
        assert landmarks_every_for(["vitals"], method, 1) == 1  # asked for: every frame
        assert landmarks_every_for(["vitals", "emotion"], method) == 1
    for method in ("pos", "chrom", "green", "ica"):  # the unsupervised methods read the mesh's skin regions
        assert landmarks_every_for(["vitals"], method) == 1
    with pytest.raises(ValueError, match="landmarks_every"):
        Pipeline([], landmarks_every=0)


def test_a_blink_between_keyframes_is_tracked_frame_by_frame(astronaut_face):
    """The eyes' luma is checked on every frame between two tracked ones: a lid closing between them (here the
    eye regions of frames 5-6 painted skin-bright, as a closed lid over the dark iris) has those frames tracked,
    where interpolation would have kept the eyes open."""
    from smartmirror.face import REGIONS

    image = np.full((240, 320, 3), 90, np.uint8)
    lids = np.zeros(image.shape[:2], np.uint8)
    for name in ("left_eye", "right_eye"):
        points = astronaut_face.landmarks_px[list(REGIONS[name]), :2]
        cv2.fillConvexPoly(lids, np.round(points).astype(np.int32), 1)

    class StillFace:
        def __init__(self):
            self.seen = []

        def process(self, frame):
            self.seen.append(int(frame[0, 0, 0]))
            return astronaut_face

        def close(self):
            pass

    packets = []
    for i in range(13):
        frame = image.copy()
        frame[0, 0, 0] = i
        if i in (5, 6):
            frame[lids > 0] = 200
        packets.append(FramePacket(t=i / 30, image=frame, index=i))
    tracker = StillFace()
    with Pipeline([], tracker=tracker, landmarks_every=4) as pipeline:
        results = list(pipeline.run(packets))
    assert [r.packet.index for r in results] == list(range(13))
    assert tracker.seen == [0, 4, 8, 5, 6, 7, 12]  # 5-7 (the blink's interval) tracked; 1-3 and 9-11 interpolated
