"""FacePhys live: the streamed pulse against the clip report's batch run, and the live reading, on a real recording.

The recording is PhysRecorder's v01 webcam clip (MIT; tests/data/physrecorder_v01_15fps.mkv, 20 s at 15 frames/s,
a finger oximeter read 71.1 beats/min: tests/data/physrecorder_v01_truth.json), through real FaceMesh, BlazeFace
and the exported network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smartmirror.vitals import face_crops, neural
from smartmirror.vitals.analyzer import VitalsAnalyzer
from smartmirror.vitals.methods import get_method, list_methods
from smartmirror.vitals.streaming import StreamingPulse, can_stream

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def recording():
    """(packets, FaceMesh faces, oximeter heart rate) of the real 20 s clip."""
    from smartmirror.face import FaceTracker
    from smartmirror.frames import read_video_packets

    packets = list(read_video_packets(DATA / "physrecorder_v01_15fps.mkv"))
    with FaceTracker() as tracker:
        faces = [tracker.process(p.image) for p in packets]
    truth = json.loads((DATA / "physrecorder_v01_truth.json").read_text())["heart_rate_bpm"]
    return packets, faces, truth


@pytest.fixture(scope="module")
def crops(recording):
    packets, faces, _ = recording
    frames, has_face = face_crops.crop_faces(packets, faces)
    assert has_face.all()
    return frames


def stream(frames: np.ndarray, times: np.ndarray, chunk_frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    streamer = StreamingPulse("facephys-rlap", chunk_frames=chunk_frames)
    parts = [streamer.push(float(t), frame) for t, frame in zip(times, frames, strict=True)] + [streamer.flush()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("chunk_frames", [1, 4])
def test_streamed_pulse_equals_the_batch_run_on_a_real_clip(recording, crops, chunk_frames):
    """Frame by frame with the state carried (15 frames/s: each frame fills two of the network's 30/s slots), one
    sample per frame at its own time, equal to the clip report's batch run over the same crops."""
    packets, _, _ = recording
    times = np.array([p.t for p in packets])
    batch = neural.pretrained_pulse("facephys-rlap", crops, sampling_rate=(len(times) - 1) / (times[-1] - times[0]))
    sample_times, streamed = stream(crops, times, chunk_frames)
    np.testing.assert_array_equal(sample_times, times)
    assert np.max(np.abs(streamed - batch)) < 1e-4 * batch.std()


def test_a_break_in_the_face_run_starts_a_fresh_state(recording, crops):
    """After more than half a second without a face the stream equals a fresh stream of the second run alone."""
    packets, _, _ = recording
    times = np.array([p.t for p in packets])
    first, second = slice(0, 120), slice(150, None)
    joined_times = np.concatenate([times[first], times[second]])  # a 2 s hole where the face was not seen
    got_t, got = stream(np.concatenate([crops[first], crops[second]]), joined_times)
    alone_t, alone = stream(crops[second], times[second])
    tail = got_t >= times[150]
    np.testing.assert_array_equal(got_t[tail], alone_t)
    np.testing.assert_allclose(got[tail], alone, rtol=0, atol=1e-5 * alone.std())
    carried_t, carried = stream(crops[120:], times[120:])  # without the hole the state carries on: not fresh
    assert np.max(np.abs(carried[carried_t >= times[150]] - alone)) > 0.05 * alone.std()


def test_live_facephys_reads_the_oximeter_rate_and_agrees_with_the_clip_report(recording):
    packets, faces, truth = recording
    live = VitalsAnalyzer(method="facephys-rlap")
    assert live.stream_ is not None and live.crops_ is None  # streamed, no crops kept for a batch run
    readings = []
    for packet, face in zip(packets, faces, strict=True):
        state = live.update(packet, face)
        if state.heart_rate_bpm is not None:
            readings.append(state.heart_rate_bpm)
    assert state.method == "facephys-rlap"
    assert readings, "no live reading in 20 s of a clear face"
    assert abs(readings[-1] - truth) < 3.0  # measured 70.6 against the oximeter's 71.1
    assert max(abs(r - truth) for r in readings) < 5.0
    clip = VitalsAnalyzer(method="facephys-rlap", live=False)
    for packet, face in zip(packets, faces, strict=True):
        clip.update(packet, face)
    assert clip.stream_ is None and clip.crops_ is not None  # the clip report keeps its batch run
    live_report, clip_report = live.summary(), clip.summary()
    assert abs(live_report["heart_rate_bpm"] - clip_report["heart_rate_bpm"]) < 1.0
    assert abs(clip_report["heart_rate_bpm"] - truth) < 3.0


def test_the_clip_report_streams_facephys_beside_tracking_and_reads_what_the_batch_run_reads(recording):
    """``stream_pulse=True`` (the clip report): the network runs as the crops come, in the clip chunks, and the
    summary flushes the last partial chunk; every key of the report equals the batch run's over kept crops."""
    packets, faces, truth = recording
    streamed = VitalsAnalyzer(method="facephys-rlap", live=False, stream_pulse=True)
    batch = VitalsAnalyzer(method="facephys-rlap", live=False)
    for packet, face in zip(packets, faces, strict=True):
        streamed.update(packet, face)
        batch.update(packet, face)
    assert streamed.stream_ is not None and streamed.crops_ is None and batch.stream_ is None
    assert streamed.stream_.stream.chunk_frames == neural.ONNX_CHUNK_FRAMES
    assert streamed.stream_.background  # the network runs on its own thread while the frames are measured
    streamed.stream_.drain()
    waiting = len(streamed.stream_.stream.pending_)
    assert 0 < waiting < neural.ONNX_CHUNK_FRAMES  # 300 frames at 15/s fill 600 slots: 24 wait for the summary
    streamed_report, batch_report = streamed.summary(), batch.summary()
    times, _ = streamed.stream_.samples()
    assert times[-1] == packets[-1].t  # flushed: the last frame has its sample
    assert streamed_report == batch_report
    assert abs(streamed_report["heart_rate_bpm"] - truth) < 3.0


def test_the_network_thread_gives_the_same_samples_with_a_bounded_queue(recording, crops):
    """On the worker thread, with at most 3 crops queued (push waits for the oldest), the samples are those of the
    same stream run on the caller's thread."""
    from smartmirror.vitals.streaming import LivePulse

    packets, _, _ = recording
    pulses = [LivePulse("facephys-rlap", keep_s=60.0, chunk_frames=neural.ONNX_CHUNK_FRAMES, for_clip=True,
                        background=background, max_queued=3) for background in (False, True)]
    for packet, crop in zip(packets[:120], crops[:120], strict=True):
        for pulse in pulses:
            pulse.push(packet.t, crop)
        assert len(pulses[1]._jobs) <= 3
    for pulse in pulses:
        pulse.flush()
    (times, values), (bg_times, bg_values) = (pulse.samples() for pulse in pulses)
    assert len(times) == 120
    np.testing.assert_array_equal(bg_times, times)
    np.testing.assert_array_equal(bg_values, values)


def test_a_failure_on_the_network_thread_reaches_the_caller(crops):
    """A crop the network cannot take fails on the worker thread; the next push (or the flush) raises it there,
    and the worker ends."""
    from smartmirror.vitals.streaming import LivePulse

    pulse = LivePulse("facephys-rlap", keep_s=30.0, chunk_frames=neural.ONNX_CHUNK_FRAMES, for_clip=True,
                      background=True)
    for k in range(10):
        pulse.push(k / 30, crops[k])
    pulse.push(10 / 30, np.zeros((5, 5), np.uint8))  # not an (h, w, 3) image
    with pytest.raises(ValueError):
        for k in range(11, 60):
            pulse.push(k / 30, crops[k])
        pulse.flush()
    pulse.flush()  # the worker is gone; the pulse is still usable
    assert not pulse.background


def test_facephys_is_offered_live_and_me_is_not():
    from smartmirror.api.routes.errors import ApiError, check_pulse_method
    from smartmirror.api.settings import ApiSettings
    from smartmirror.ui.page import pulse_source_caption

    assert "facephys-rlap" in list_methods(realtime_only=True)
    assert can_stream(get_method("facephys-rlap")) and not can_stream(get_method("pos"))
    assert ApiSettings.from_env({"SMARTMIRROR_PULSE_METHOD": "facephys-rlap"}).pulse_method == "facephys-rlap"
    check_pulse_method("facephys-rlap", live=True)
    with pytest.raises(ApiError) as refused:
        check_pulse_method("me-rlap", live=True)
    assert refused.value.code == "pulse_method_not_realtime"
    assert "Pulse method: facephys-rlap" in pulse_source_caption("webcam", "facephys-rlap")
    assert "Pulse method: pos" in pulse_source_caption("demo", None)
    with pytest.raises(ValueError, match="no ONNX export"):
        StreamingPulse("me-rlap")


def test_the_clip_report_meshes_one_frame_in_ten_for_facephys_and_reads_what_every_frame_reads(monkeypatch):
    """Vitals alone with FacePhys (which reads its detector's crop): FaceMesh on every 10th frame
    (``LEARNED_LANDMARKS_EVERY``), the landmarks interpolated between, and the same reading as FaceMesh on every
    frame, near the oximeter's."""
    from smartmirror.face import FaceTracker
    from smartmirror.face_track import LEARNED_LANDMARKS_EVERY
    from smartmirror.report import analyze_video

    calls = []
    process = FaceTracker.process
    monkeypatch.setattr(FaceTracker, "process", lambda self, image: calls.append(1) or process(self, image))
    clip = DATA / "physrecorder_v01_15fps.mkv"
    truth = json.loads((DATA / "physrecorder_v01_truth.json").read_text())["heart_rate_bpm"]
    sparse = analyze_video(clip, method="facephys-rlap", sections=())
    meshed, frames = len(calls), sparse["quality"]["frames"]
    calls.clear()
    dense = analyze_video(clip, method="facephys-rlap", sections=(), landmarks_every=1)
    assert len(calls) == frames  # every frame meshed
    # every 10th frame, and the frames around a blink or a fast move tracked too (this clip at 15 frames/s blinks
    # and moves a lot in 0.67 s: 211 of 301 frames; a UBFC-rPPG subject at 30 frames/s: 290 of 1990)
    assert frames / LEARNED_LANDMARKS_EVERY["facephys-rlap"] <= meshed < 0.8 * frames
    assert abs(sparse["heart_rate_bpm"] - truth) < 3.0
    assert abs(sparse["heart_rate_bpm"] - dense["heart_rate_bpm"]) < 1.0
