"""The one frame-to-state chain: its rules on small real analyzers, and the same frames through all four drivers
(clip report, REST session, eval, live engine) giving the same per-analyzer summaries."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smartmirror.api.session_store import SessionStore
from smartmirror.api.settings import ApiSettings
from smartmirror.face_choice import FaceChoice
from smartmirror.frames import FramePacket, read_video_packets
from smartmirror.live.engine import Engine, default_specs
from smartmirror.pipeline import AnalyzerRunner, Pipeline
from smartmirror.registry import AnalyzerSpec, analyzer_specs, ordered, specs_for
from smartmirror.report import analyze_video
from smartmirror.vitals.pipeline import analyze_trace
from smartmirror.vitals.rppg import DEFAULT_METHOD
from smartmirror.vitals.video import video_traces


class Recorder:
    """Remembers what it was given; raises on the frames listed in ``fail_at``."""

    def __init__(self, name: str, fail_at: tuple[int, ...] = ()):
        self.name = name
        self.fail_at = fail_at
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.seen: list[tuple[float, object]] = []

    def update(self, packet, face, fatigue_state=None):
        if packet.index in self.fail_at:
            raise RuntimeError(f"frame {packet.index} is bad")
        self.seen.append((packet.t, fatigue_state))
        return {"frames": len(self.seen), "t": packet.t}

    def summary(self):
        return {"frames": len(self.seen)}


def _packets(count: int, step_s: float = 1 / 30) -> list[FramePacket]:
    image = np.zeros((8, 8, 3), np.uint8)
    return [FramePacket(t=i * step_s, image=image, index=i) for i in range(count)]


def _run(runners: dict[str, AnalyzerRunner], packets: list[FramePacket]) -> None:
    states: dict = {}
    for packet in packets:
        for name, runner in runners.items():
            if runner.due(packet.t):
                runner.step(packet, None, states)
            states[name] = runner.state


def test_rates_are_source_seconds_and_needs_get_the_same_frames_state():
    fatigue, emotion = Recorder("fatigue"), Recorder("emotion")
    specs = ordered(specs_for({"emotion": emotion, "fatigue": fatigue}))
    assert [s.name for s in specs] == ["fatigue", "emotion"]  # emotion needs fatigue: it goes after it
    runners = {s.name: AnalyzerRunner(s) for s in specs}
    _run(runners, _packets(60))  # 2 s of frames
    assert len(fatigue.seen) == 60 and fatigue.resets == 1  # reset once, by the runner, before its first frame
    assert [t for t, _ in emotion.seen] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8],
                                                         abs=1 / 30 + 1e-9)
    assert all(state["t"] == t for t, state in emotion.seen)  # fatigue's state of that very frame
    assert runners["emotion"].summary() == {"frames": 10}


def test_a_failing_analyzer_gives_no_state_is_retried_and_the_others_go_on():
    broken, fine = Recorder("broken", fail_at=(3,)), Recorder("fine")
    runners = {s.name: AnalyzerRunner(s, retry_after_s=0.5) for s in
               [AnalyzerSpec("broken", lambda: broken), AnalyzerSpec("fine", lambda: fine)]}
    _run(runners, _packets(60))
    assert len(fine.seen) == 60
    seen = [round(t * 30) for t, _ in broken.seen]
    assert seen[:3] == [0, 1, 2] and 4 not in seen and seen[3] == 18  # frame 3 raised; tried again 0.5 s later
    assert runners["broken"].failures == 0 and runners["broken"].error is None  # it recovered
    assert isinstance(runners["broken"].exception, RuntimeError)  # kept for drivers that must not lose it


def test_an_analyzer_that_cannot_be_built_is_unavailable_with_its_reason():
    def missing():
        raise ImportError("no module named 'smartmirror.nothing'")

    runner = AnalyzerRunner(AnalyzerSpec("missing", missing))
    assert runner.start() is False and not runner.available and "ImportError" in runner.error
    assert runner.step(_packets(1)[0], None) is None and runner.summary() is None


def test_registry_rejects_unknown_names_and_modes_and_orders_needs():
    with pytest.raises(ValueError, match="unknown analyzers"):
        analyzer_specs(["vitals", "telepathy"])
    with pytest.raises(ValueError, match="mode"):
        analyzer_specs(mode="racing")
    specs = {s.name: s for s in analyzer_specs(["emotion", "fatigue", "vitals", "identity"])}
    assert specs["vitals"].rate_s is None and specs["vitals"].every_frame
    assert specs["emotion"].needs == ("fatigue",) and specs["emotion"].rate_s == pytest.approx(0.2)
    with pytest.raises(ValueError, match="need each other"):
        ordered([AnalyzerSpec("a", Recorder, needs=("b",)), AnalyzerSpec("b", Recorder, needs=("a",))])


def test_pipeline_repairs_timestamps_and_counts_faces(astronaut_bgr):
    recorder = Recorder("fatigue")
    with Pipeline([AnalyzerSpec("fatigue", lambda: recorder)]) as pipeline:
        results = [pipeline.step(FramePacket(t=t, image=astronaut_bgr, index=i))
                   for i, t in enumerate([0.0, 1 / 30, 1 / 30, 0.0])]  # a repeated stamp, then a restart
    times = [r.t for r in results]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert all(isinstance(r.choice, FaceChoice) and r.face is not None for r in results)
    assert pipeline.frames_with_face == 4 and "face" in results[0].timings_s


# -- the four drivers ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(synth_clip):
    # the vitals tests' 12 s clip of the real astronaut portrait with a realistic pulse (made once per session)
    return synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, width=320, height=240)[0] / "vid.avi"


def _live_summaries(packets: list[FramePacket]) -> tuple[dict, dict]:
    engine = Engine(default_specs("wellness")).start()
    try:
        for packet in packets:  # each frame after the face thread tracked the previous one: none dropped
            target = engine.buffer.sequence + 1
            engine.submit(packet)
            deadline = time.monotonic() + 30
            while engine.buffer.sequence < target:
                assert time.monotonic() < deadline, "the face thread stopped taking frames"
                time.sleep(0.002)
        deadline = time.monotonic() + 60
        for name in ("vitals", "fatigue"):
            while (engine.store.get(name).source_t or -1) < packets[-1].t - 1e-9:
                assert time.monotonic() < deadline, f"{name} did not catch up"
                time.sleep(0.02)
    finally:
        engine.stop()
    return engine.summaries(), engine.stats()


def test_clip_report_rest_eval_and_live_give_the_same_summaries(clip):
    report = analyze_video(clip)
    packets = list(read_video_packets(clip))

    store = SessionStore(ApiSettings())
    session = store.create()
    with store.use(session.session_id) as held:
        for packet in packets:
            held.process(packet.image, packet.t)
        rest = held.summaries()
    store.close_all()

    trace = video_traces(clip, [DEFAULT_METHOD])[DEFAULT_METHOD]
    evaluated = analyze_trace(trace, method=DEFAULT_METHOD).report()

    live, stats = _live_summaries(packets)
    assert stats["frames_dropped"] == 0 and stats["frames_lost"]["vitals"] == 0

    heart_rate = report["heart_rate_bpm"]
    assert heart_rate is not None and abs(heart_rate - 70) < 3
    assert rest["vitals"]["heart_rate_bpm"] == pytest.approx(heart_rate, abs=0.05)
    assert evaluated["heart_rate_bpm"] == pytest.approx(heart_rate, abs=0.05)
    assert live["vitals"]["heart_rate_bpm"] == pytest.approx(heart_rate, abs=0.5)

    for name in ("fatigue", "emotion"):
        assert rest[name] == report[name], name  # the same frames at the same source-clock rates
    for key in ("blinks", "yawns", "perclos"):
        assert live["fatigue"][key] == pytest.approx(report["fatigue"][key], abs=0.02), key
    assert live["emotion"]["label"] == report["emotion"]["label"]
    for label, p in report["emotion"]["probabilities"].items():  # the live path may pick other frames
        assert live["emotion"]["probabilities"][label] == pytest.approx(p, abs=0.1), label


def test_closing_a_pipeline_releases_what_its_analyzers_hold(clip):
    """The learned pulse's face-crop detector (a BlazeFace onnxruntime session) is released when the pipeline closes
    (a REST session ending, a report done), not left to the garbage collector."""
    from smartmirror.registry import vitals_spec

    packets = list(read_video_packets(clip, max_frames=20))
    with Pipeline([vitals_spec("facephys-rlap", live=True)]) as pipeline:
        for packet in packets:
            pipeline.step(packet)
        runner = pipeline.runners["vitals"]
        cropper = runner.analyzer.cropper_
        assert cropper is not None and cropper._blazeface is not None  # made on the first frames
    assert cropper._blazeface is None and runner.analyzer is None and pipeline.runners == {}
