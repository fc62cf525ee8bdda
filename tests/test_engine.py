"""The live engine without a browser: real FaceMesh on synthetic pulse clips of the astronaut, real analyzers,
the real agent and SQLite files; plus the video callback, the overlay, the sources and the session history."""

from __future__ import annotations

import asyncio
import dataclasses
import fractions
import time
import tracemalloc

import av
import numpy as np
import pytest
from failing_analyzer import FailingAnalyzer
from state_examples import emotion_state, fatigue_state, stressed, vitals_state

from smartmirror.emotion.state import EmotionState
from smartmirror.fatigue.state import FatigueState
from smartmirror.frames import FramePacket, SourceClock, read_video_packets
from smartmirror.live.engine import Engine, default_specs
from smartmirror.live.store import STATUS_OK, STATUS_STARTING, STATUS_UNAVAILABLE, StateStore
from smartmirror.registry import AnalyzerSpec
from smartmirror.vitals.state import VitalsState

SMALL = dict(width=320, height=240, fps=30.0)


class ForeheadGreen:
    """A small real analyzer: the mean green level of the forehead, and how many frames it saw (in order)."""

    name = "forehead_green"

    def reset(self) -> None:
        self.times_: list[float] = []

    def update(self, packet, face):
        self.times_.append(packet.t)
        if face is None:
            return {"face": False, "frames": len(self.times_)}
        green = float(packet.image[..., 1][face.region_mask("forehead")].mean())
        return {"face": True, "green": green, "frames": len(self.times_), "t": packet.t}

    def summary(self):
        return {"frames": len(self.times_)}


class SlowAnalyzer(ForeheadGreen):
    """The same, taking ``delay_s`` per frame (an analyzer that cannot keep up)."""

    name = "slow"

    def __init__(self, delay_s: float = 0.02):
        self.delay_s = delay_s

    def update(self, packet, face):
        time.sleep(self.delay_s)
        return super().update(packet, face)


def _feed(engine: Engine, packets, *, timeout_s: float = 60.0) -> list[FramePacket]:
    """Submit packets one by one, each after the face thread tracked the previous (no drops)."""
    fed = []
    deadline = time.monotonic() + timeout_s
    for packet in packets:
        target = engine.buffer.sequence + 1
        engine.submit(packet)
        fed.append(packet)
        while engine.buffer.sequence < target:
            assert time.monotonic() < deadline, "the face thread stopped taking frames"
            time.sleep(0.002)
    return fed


def _wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def clip_packets(tmp_path_factory):
    """4 s of a 320x240 synthetic pulse clip (astronaut), decoded into memory once."""
    from smartmirror.synth import SynthConfig, make_clip

    directory = tmp_path_factory.mktemp("engine_clip")
    truth = make_clip(directory, SynthConfig(duration_s=4.0, heart_rate_bpm=80.0, **SMALL))
    return list(read_video_packets(directory / "vid.avi")), truth


def test_default_analyzers_publish_states_from_one_tracker_pass(clip_packets):
    packets, _truth = clip_packets
    engine = Engine(default_specs("wellness"), mode="wellness").start()
    try:
        _feed(engine, packets)
        for name in ("fatigue", "emotion", "vitals"):
            _wait_for(lambda n=name: engine.store.get(n).status != STATUS_STARTING, 30, f"{name} state")
        # the tracker thread may still be on the last frame when the analyzers have spoken
        _wait_for(lambda: engine.store.get("face").source_t >= packets[-1].t - 1e-9, 30, "face at the last frame")
        snapshot = engine.store.snapshot()
        face = snapshot["face"]
        assert face.status == STATUS_OK and face.state["face_present"] is True
        assert face.source_t == pytest.approx(packets[-1].t)
        fatigue = snapshot["fatigue"]
        assert fatigue.status == STATUS_OK, fatigue.error
        assert isinstance(fatigue.state, FatigueState)
        assert fatigue.state.face_present is True and 0.0 <= fatigue.state.perclos <= 1.0
        emotion = snapshot["emotion"]
        assert emotion.status == STATUS_OK, emotion.error
        assert isinstance(emotion.state, EmotionState) and emotion.state.label in emotion.state.probabilities
        vitals = snapshot["vitals"]
        assert vitals.status == STATUS_OK, vitals.error
        assert isinstance(vitals.state, VitalsState) and "heart_rate_bpm" in vitals.state.to_json()
        assert engine.frames_dropped == 0
        assert all(e.updated_at > 0 for e in snapshot.values())
    finally:
        engine.stop()


def test_every_frame_analyzer_sees_every_frame_in_order_and_rate_limited_one_keeps_its_rate(clip_packets):
    packets, _ = clip_packets
    every = ForeheadGreen()
    sampled = ForeheadGreen()
    specs = [AnalyzerSpec("every", lambda: every), AnalyzerSpec("sampled", lambda: sampled, rate_s=0.25)]
    engine = Engine(specs).start()
    try:
        _feed(engine, packets)
        _wait_for(lambda: len(every.times_) == len(packets), 10, "every frame analysed")
        assert every.times_ == pytest.approx([p.t for p in packets])
        span_s = packets[-1].t - packets[0].t
        assert 1 <= len(sampled.times_) <= 4.0 * span_s + 1  # at most 4 updates per second of source time
        assert np.all(np.diff(sampled.times_) >= 0.25 - 1e-9)
        state = engine.store.state("every")
        assert state["face"] is True and 50 < state["green"] < 250
        assert engine.frames_lost["every"] == 0
    finally:
        engine.stop()
    assert not any(t.is_alive() for t in engine._threads)
    assert {t.name for t in engine._threads} >= {"smartmirror-face", "smartmirror-every", "smartmirror-sampled"}


def test_a_failing_analyzer_is_unavailable_while_the_rest_keep_running(clip_packets, monkeypatch):
    packets, _ = clip_packets
    specs = [AnalyzerSpec("emotion", lambda: FailingAnalyzer("emotion"))]

    def broken_factory():
        raise ImportError("no module named 'smartmirror.nothing'")

    working = ForeheadGreen()
    specs += [AnalyzerSpec("working", lambda: working), AnalyzerSpec("broken", broken_factory)]
    engine = Engine(specs, retry_after_s=0.05).start()
    try:
        _feed(engine, packets[:40])
        _wait_for(lambda: engine.store.get("emotion").status == STATUS_UNAVAILABLE, 10, "emotion unavailable")
        _feed(engine, packets[40:])
        _wait_for(lambda: len(working.times_) == len(packets), 10, "the working analyzer to finish")
        _wait_for(lambda: engine.store.get("working").source_t >= packets[-1].t - 1e-9, 10, "its state published")
        snapshot = engine.store.snapshot()
        assert snapshot["emotion"].status == STATUS_UNAVAILABLE
        assert "injected failure" in snapshot["emotion"].error
        assert snapshot["broken"].status == STATUS_UNAVAILABLE and "ImportError" in snapshot["broken"].error
        assert snapshot["working"].status == STATUS_OK
        assert snapshot["working"].source_t == pytest.approx(packets[-1].t)  # kept up to the last frame
        assert snapshot["face"].status == STATUS_OK
    finally:
        engine.stop()


def test_memory_stays_bounded_when_an_analyzer_falls_behind(clip_packets):
    packets, _ = clip_packets
    slow = SlowAnalyzer(delay_s=0.03)
    engine = Engine([AnalyzerSpec("slow", lambda: slow)], buffer_frames=30, buffer_seconds=1.0).start()
    try:
        _feed(engine, packets[:20])
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        t0 = packets[-1].t
        frame_bytes = packets[0].image.nbytes
        n_frames = 600  # 600 x 230 kB = 138 MB if anything kept them all
        max_len = 0
        for i in range(n_frames):
            source = packets[i % len(packets)]
            engine.submit(FramePacket(t=t0 + (i + 1) / 30, image=source.image.copy(), index=i))
            max_len = max(max_len, len(engine.buffer))
            time.sleep(0.004)  # faster than the tracker and much faster than the slow analyzer
        after, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert max_len <= 30
        assert engine.frames_lost["slow"] > 0 or engine.frames_dropped > 0
        # the design's ceiling: the buffer (30 frames) + the batch the slow analyzer is working through (up to a
        # full buffer) + the frames in the inbox and the tracker, plus each frame's face data (cached region masks)
        # -- about 62 frames of pixels; anything that kept frames would hold all 600 (138 MB)
        ceiling = (2 * 30 + 16) * frame_bytes
        assert after - before < ceiling, f"grew by {(after - before) / 1e6:.1f} MB (ceiling {ceiling / 1e6:.1f} MB)"
        assert len(engine.store.snapshot()) <= 3
    finally:
        engine.stop()


def test_agent_suggests_from_the_state_and_feedback_reaches_its_store(clip_packets, tmp_path):
    from smartmirror.agent import AgentStore, InterventionAgent

    packets, _ = clip_packets
    path = tmp_path / "agent.sqlite3"
    engine = Engine([], agent_factory=lambda: InterventionAgent("wellness", seed=0, store=AgentStore(path)),
                    agent_period_s=0.05).start()
    try:
        _feed(engine, packets[:15])
        state = _wait_for(lambda: (engine.store.state("agent") or {}).get("suggestion"), 10, "a suggestion")
        assert state["action"] in ("micro_break", "hydrate", "breathing", "eye_rest", "posture")
        assert not engine.feedback("not-the-current-id", 1.0)
        assert engine.feedback(state["id"], 1.0)
        assert engine.store.state("agent")["suggestion"] is None
        context = engine.context()
        assert context["face_present"] is True and context["mode"] == "wellness"
        assert 0 <= context["hour_of_day"] < 24 and context["minutes_in_session"] >= 0
    finally:
        engine.stop()
    with AgentStore(path) as store:
        rows = store.history("default")
    assert [(r["id"], r["reward"]) for r in rows] == [(state["id"], 1.0)]


def test_context_maps_analyzer_states_to_the_agent_contract():
    engine = Engine([], mode="driver")
    engine.store.put("face", {"face_present": True})
    engine.store.put("fatigue", fatigue_state(drowsiness_probability=0.9, perclos=0.3, microsleep=True))
    engine.store.put("emotion", emotion_state(valence=-0.4, arousal=1.7))
    engine.store.put("vitals", vitals_state(heart_rate_bpm=70.0, stress=stressed(88.0)))
    first = engine.context(now=1000.0)
    engine.store.put("vitals", vitals_state(heart_rate_bpm=82.0, stress=stressed(88.0)))
    second = engine.context(now=1001.0)
    assert first["drowsiness_probability"] == 0.9 and first["perclos"] == 0.3 and first["microsleep"] is True
    assert first["stress_score"] == 88.0 and first["emotion_valence"] == -0.4
    assert first["emotion_arousal"] == 1.0  # clipped to the contract's range
    assert first["heart_rate_delta_bpm"] == 0.0 and second["heart_rate_delta_bpm"] == pytest.approx(6.0)
    assert first["mode"] == "driver" and first["now"] == 1000.0
    from smartmirror.agent import InterventionAgent

    suggestion = InterventionAgent("driver").suggest(first)
    assert suggestion is not None and suggestion.action == "pull_over"


def test_kiosk_forgets_everything_after_the_face_is_gone(clip_packets):
    from smartmirror.agent import InterventionAgent

    packets, _ = clip_packets
    green = ForeheadGreen()
    engine = Engine([AnalyzerSpec("green", lambda: green)], mode="kiosk", kiosk_forget_s=1.0,
                    agent_factory=lambda: InterventionAgent("kiosk", seed=0), agent_period_s=0.05).start()
    try:
        _feed(engine, packets[:20])
        _wait_for(lambda: engine.store.state("green") is not None, 10, "green state")
        _wait_for(lambda: engine.agent is not None and engine.agent.history(), 10, "a kiosk suggestion")
        assert engine.generation == 0
        t0 = packets[19].t
        empty = np.full_like(packets[0].image, 40)
        _feed(engine, [FramePacket(t=t0 + (i + 1) / 30, image=empty) for i in range(45)])  # 1.5 s, no face
        _wait_for(lambda: engine.generation == 1, 5, "kiosk forget")
        assert engine.agent.history() == []
        assert engine.store.state("agent") is None or engine.store.state("agent")["suggestion"] is None
        last_t = engine.buffer.latest().t
        _wait_for(lambda: green.times_ and green.times_[-1] == last_t, 5, "the analyzer to catch up")
        assert len(green.times_) < 45  # reset at the forget: only the frames after it remain
        assert green.times_[0] >= t0 + 1.0 - 1e-6
        state = engine.store.state("green")
        assert state is None or (state["face"] is False and state["frames"] == len(green.times_))
        assert engine.generation == 1  # no face since: nothing more to forget
    finally:
        engine.stop()


def test_session_history_records_samples_while_a_face_is_seen(clip_packets, tmp_path):
    from smartmirror.ui.history import SAMPLE_COLUMNS, HistoryStore
    from smartmirror.ui.session import HistoryRecorder

    packets, _ = clip_packets
    store = HistoryStore(tmp_path / "history.sqlite3")
    recorder = HistoryRecorder(store, "wellness")
    engine = Engine([], on_sample=recorder.record, sample_every_s=0.1, agent_period_s=0.05).start()
    try:
        engine.store.put("vitals", vitals_state(heart_rate_bpm=75.0, stress=stressed(20.0, "low")))
        _feed(engine, packets[:30])
        _wait_for(lambda: len(store.samples(recorder.session_id)) >= 2, 10, "history samples")
    finally:
        engine.stop()
    samples = store.samples()
    assert {s["heart_rate_bpm"] for s in samples} == {75.0} and samples[0]["stress_score"] == 20.0
    (session,) = store.sessions()
    assert session["mode"] == "wellness" and session["samples"] == len(samples)
    assert session["heart_rate_bpm"] == pytest.approx(75.0)
    csv_text = store.to_csv()
    header, *lines = csv_text.strip().splitlines()
    assert header.split(",") == ["session_id", "time_iso", "t_wall_s", *SAMPLE_COLUMNS]
    assert len(lines) == len(samples) and ",75," in lines[0]
    assert not any("image" in c for c in header.split(","))
    store.clear()
    assert store.sessions() == [] and store.samples() == []
    store.close()


def test_state_store_is_consistent_under_concurrent_writers():
    import threading

    store = StateStore()
    errors = []

    def writer(name):
        try:
            for i in range(2000):
                store.put(name, {"i": i}, source_t=float(i))
                if i % 500 == 0:
                    store.mark_unavailable(name, "hiccup")
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"w{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for _ in range(200):
        assert all(e.state is None or isinstance(e.state["i"], int) for e in store.snapshot().values())
    for t in threads:
        t.join()
    assert not errors
    assert {e.state["i"] for e in store.snapshot().values()} == {1999}
    store.mark_unavailable("w0", "broke")
    entry = store.get("w0")
    assert entry.status == STATUS_UNAVAILABLE and entry.state == {"i": 1999} and entry.error == "broke"
    assert store.state("w0") is None


def test_source_clock_keeps_time_increasing_across_loops_and_missing_stamps():
    clock = SourceClock()
    times = [clock(t) for t in (0.0, 0.033, 0.066, 0.0, 0.033, None)]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[3] == pytest.approx(0.066 + 1 / 30)


def test_video_callback_submits_source_time_and_returns_the_mirrored_overlay(astronaut_bgr):
    from smartmirror.ui.session import MirrorSession

    session = MirrorSession(engine_factory=lambda mode, keep: Engine([], mode=mode))
    engine = session.ensure_engine("wellness", False)
    try:
        image = astronaut_bgr[:480, :480].copy()
        outputs = []
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = 3000 * i + 90000
            frame.time_base = fractions.Fraction(1, 90000)
            outputs.append(session.video_frame_callback(frame))
            time.sleep(0.02)
        _wait_for(lambda: engine.buffer.latest() is not None and engine.buffer.latest().t > 2.29, 10, "last frame")
        assert engine.buffer.latest().t == pytest.approx(1.0 + 39 / 30, abs=1e-6)  # frame.time, not wall time
        assert engine.overlay() is not None and engine.overlay().landmarks_xy is not None
        out = session.video_frame_callback(frame).to_ndarray(format="bgr24")
        assert out.shape == image.shape
        landmarks = engine.overlay().landmarks_xy
        nose_x, nose_y = np.round(landmarks[1]).astype(int)
        mirrored = out[nose_y, image.shape[1] - 1 - nose_x]
        assert tuple(int(v) for v in mirrored) == (80, 255, 120)  # landmark colour at the mirrored position
        assert np.array_equal(out[-1, :100], image[-1, ::-1][:100])  # flipped elsewhere
        assert session.callback_p95_ms() is not None and session.callback_p95_ms() < 200
    finally:
        session.close()


def test_rtc_configuration_has_no_ice_servers_unless_configured():
    from smartmirror.ui.sources import ConfigError, rtc_configuration

    assert rtc_configuration({}) == {"iceServers": []}
    turn = '[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p", "x": 1}]'
    assert rtc_configuration({"SMARTMIRROR_ICE_SERVERS": turn}) == {
        "iceServers": [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]
    }
    for bad in ("{not json", '[{"username": "u"}]', '"stun:x"'):
        with pytest.raises(ConfigError, match="SMARTMIRROR_ICE_SERVERS"):
            rtc_configuration({"SMARTMIRROR_ICE_SERVERS": bad})


def test_packet_track_plays_a_looped_clip_in_real_time_with_source_timestamps(synth_clip):
    from smartmirror.ui.sources import PacketVideoTrack

    directory, _ = synth_clip(duration_s=0.5, **SMALL)
    track = PacketVideoTrack(lambda: read_video_packets(directory / "vid.avi", loop=True), name="test")

    async def receive(n):
        return [await track.recv() for _ in range(n)]

    started = time.monotonic()
    frames = asyncio.run(receive(25))
    elapsed = time.monotonic() - started
    track.stop()
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))  # rising across the loop at frame 15
    assert times[-1] == pytest.approx(24 / 30, abs=1e-3)
    assert elapsed >= 0.6  # paced like a camera, not as fast as decoding
    assert frames[0].width == 320 and frames[0].height == 240


def test_bytes_source_reports_a_clear_error_for_garbage():
    from smartmirror.frames import VideoError
    from smartmirror.ui.sources import bytes_packets

    with pytest.raises(VideoError) as info:
        next(bytes_packets(b"this is not a video", name="notes.txt"))
    assert info.value.code == "not_a_video" and "notes.txt" in info.value.message


def test_demo_clip_is_made_once_loops_seamlessly_and_lives_in_the_cache(tmp_path, monkeypatch):
    from smartmirror import demo
    from smartmirror.synth import SynthConfig

    real = demo.demo_config()
    assert (real.duration_s * real.heart_rate_bpm / 60) % 1 == 0  # whole beats: no seam in the pulse
    assert (real.duration_s * real.respiration_rate_bpm / 60) % 1 == 0  # whole breaths
    assert real.hrv_sd_ms == 0 and real.respiratory_sinus_arrhythmia_bpm == 0
    monkeypatch.setenv("SMARTMIRROR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "demo_config", lambda: SynthConfig(duration_s=0.4, codec="mjpeg", **SMALL))
    path, truth = demo.ensure_demo_clip()
    assert path.is_relative_to(tmp_path / "cache") and path.exists()
    mtime = path.stat().st_mtime_ns
    assert demo.ensure_demo_clip()[0].stat().st_mtime_ns == mtime  # reused, not remade
    packets = demo.demo_packets(realtime=False)
    times = [next(packets).t for _ in range(30)]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert truth.heart_rate_bpm > 0
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"demo-v{demo.DEMO_VERSION}"]  # no staging left


def test_panel_texts_read_as_the_contract_says():
    from smartmirror.ui.format import clip01, heart_rate_text, measuring_text, percent_text, unit_text
    from smartmirror.ui.panels import pulse_svg

    assert heart_rate_text(72.4) == "72 bpm" and heart_rate_text(None) == "—" and heart_rate_text(float("nan")) == "—"
    assert measuring_text(11.2) == "measuring... 12 s" and measuring_text(None) == "measuring..."
    assert percent_text(0.426) == "43%" and unit_text(12.0, "ms") == "12 ms" and unit_text("x", "ms") == "—"
    assert clip01(1.7) == 1.0 and clip01(None) == 0.0 and clip01(True) == 0.0
    svg = pulse_svg([0.0, 1.0, -1.0, 0.5])
    import re

    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert svg.startswith("<svg") and len(points) == 4 and 'data-testid="pulse-waveform"' in svg
    ys = [float(p.split(",")[1]) for p in points]
    assert ys.index(min(ys)) == 1 and ys.index(max(ys)) == 2  # SVG y grows downwards: the peak is highest


def test_identity_is_off_by_default_and_only_runs_when_opted_in():
    from smartmirror.ui.session import MirrorSession

    built: list[tuple] = []

    def factory(*args, **options):
        built.append(args + tuple(options.values()))
        return Engine([], mode=args[0])

    session = MirrorSession(engine_factory=factory)
    first = session.ensure_engine("wellness", False)
    assert built == [("wellness", False)] and session.identity is False
    assert session.ensure_engine("wellness", False) is first  # nothing changed: same engine
    session.ensure_engine("wellness", False, identity=True)
    assert built[-1] == ("wellness", False, True) and session.identity is True
    session.ensure_engine("wellness", False, identity=True, pulse_method="chrom")
    assert built[-1] == ("wellness", False, True, "chrom")
    session.close()
    vitals = next(s for s in default_specs("wellness", pulse_method="chrom") if s.name == "vitals").factory()
    assert vitals.method_.name == "chrom"
    names = [spec.name for spec in default_specs("wellness")]
    assert "identity" not in names
    assert "identity" in [spec.name for spec in default_specs("wellness", identity=True)]


class SlowTracker:
    """The real FaceMesh, ``delay_s`` slower per frame (a tracker on a busy machine)."""

    def __init__(self, delay_s: float = 0.1):
        from smartmirror.face import FaceTracker

        self.delay_s = delay_s
        self.tracker = FaceTracker(static_image_mode=False)

    def process(self, image):
        time.sleep(self.delay_s)
        return self.tracker.process(image)

    def close(self):
        self.tracker.close()


def test_frames_the_busy_tracker_skips_still_reach_every_frame_analyzers(clip_packets):
    packets, _truth = clip_packets
    every = ForeheadGreen()
    tracked_only = SlowAnalyzer(delay_s=0.0)
    engine = Engine([AnalyzerSpec("every", lambda: every, every_frame=True),
                     AnalyzerSpec("tracked", lambda: tracked_only)], mode="wellness",
                    tracker_factory=lambda: SlowTracker(0.1)).start()
    try:
        for packet in packets[:60]:  # 30 frames/s into a tracker that manages under 10
            engine.submit(packet)
            time.sleep(1 / 30)
        _wait_for(lambda: every.times_ and every.times_[-1] >= packets[59].t - 1e-9, 30, "the last frame")
        time.sleep(0.3)
        assert engine.frames_dropped > 20  # the tracker really skipped frames
        sent = [p.t for p in packets[:60]]
        assert every.times_ == sorted(every.times_)  # in time order
        assert len(every.times_) >= 60 - 2  # all of them (the first one or two may precede the first track)
        assert set(every.times_) <= set(sent)
        assert len(tracked_only.times_) <= 60 - engine.frames_dropped + 1  # the others see tracked frames only
        state = engine.store.state("every")
        assert state["face"] is True  # the skipped frames carry the next tracked frame's face
    finally:
        engine.stop()


def test_queued_callback_hands_every_frame_to_the_engine_and_draws_the_newest(astronaut_bgr):
    from smartmirror.ui.session import MirrorSession

    session = MirrorSession(engine_factory=lambda mode, keep: Engine([], mode=mode))
    engine = session.ensure_engine("wellness", False)
    try:
        image = astronaut_bgr[:480, :480].copy()
        frames = []
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = 3000 * i
            frame.time_base = fractions.Fraction(1, 90000)
            frames.append(frame)
        out = asyncio.run(session.queued_video_frames_callback(frames))
        assert len(out) == 1 and out[0].width == 480
        assert engine.frames_submitted == 5
        assert asyncio.run(session.queued_video_frames_callback([])) == []
    finally:
        session.close()


def test_a_skipped_frame_gets_landmarks_between_the_tracked_faces_around_it(astronaut_bgr):
    from smartmirror.face import FaceTracker
    from smartmirror.face_track import MAX_INTERPOLATION_S, between_faces

    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(astronaut_bgr)
    assert face is not None
    moved = dataclasses.replace(face, landmarks_px=face.landmarks_px + np.float32([6.0, -3.0, 0.0]), _masks={})
    middle = between_faces(0.25, (0.0, face), (1.0, moved))
    assert np.allclose(middle.landmarks_px - face.landmarks_px, [1.5, -0.75, 0.0], atol=1e-4)
    assert middle.presence_score == moved.presence_score
    assert middle.region_mask("forehead").sum() > 0  # its own masks, not the moved face's cached ones
    assert between_faces(0.5, None, (1.0, moved)) is moved  # nothing before: the face after
    too_old = 1.0 - MAX_INTERPOLATION_S - 0.1
    assert between_faces(0.95, (too_old, face), (1.0, moved)) is moved


def test_the_face_tracker_is_ready_before_the_first_frame(clip_packets):
    """MediaPipe's graphs are built and run once on a blank frame when the engine starts, not on the camera's
    first frame (1-3 s of CPU there starved the browser's capture as its stream began); then the first real
    frame is tracked at once."""
    from smartmirror.face import FaceTracker

    trackers: list[FaceTracker] = []

    def factory() -> FaceTracker:
        trackers.append(FaceTracker(static_image_mode=False))
        return trackers[-1]

    engine = Engine([], tracker_factory=factory).start()
    try:
        deadline = time.monotonic() + 30
        while not (trackers and trackers[0].ready):  # the models are loaded with no frame submitted
            assert time.monotonic() < deadline, "the tracker was not built before the first frame"
            time.sleep(0.05)
        assert engine.frames_submitted == 0
        packets, _ = clip_packets
        engine.submit(packets[0])
        deadline = time.monotonic() + 10
        while (entry := engine.store.get("face")) is None or entry.state is None:
            assert time.monotonic() < deadline, "the first frame was not tracked"
            time.sleep(0.02)
        assert entry.state["face_present"] is True and len(trackers) == 1
    finally:
        engine.stop()
