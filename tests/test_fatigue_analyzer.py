"""FatigueAnalyzer on landmark sequences made from the real astronaut landmarks (eyelids, jaw and head moved),
at 15, 24 and 30 fps with jittered timestamps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fatigue_sequences import Episode, build_sequence, true_time_above

from smartmirror.analyzer import Analyzer
from smartmirror.fatigue import FatigueAnalyzer
from smartmirror.fatigue.analyzer import MEASUREMENT_KEYS
from smartmirror.fatigue.events import P80_LEVEL
from smartmirror.fatigue.state import FatigueState
from smartmirror.frames import FramePacket

BLINK_STARTS = (6.0, 9.0, 12.5, 15.0, 18.2, 21.0, 24.4, 27.0)
CLOSURE_STARTS = (32.0, 40.0)
YAWN_START = 46.0
TIMELINE = (
    [Episode("closure", s, 0.15) for s in BLINK_STARTS]
    + [Episode("closure", s, 1.2) for s in CLOSURE_STARTS]
    + [Episode("yawn", YAWN_START, 3.0, amount=0.6)]
)
REPORT_KEYS = {
    "drowsiness_probability", "perclos", "blinks_per_min", "yawns", "ear", "mar", "head_roll_deg", "head_pitch_deg"
}


def run(analyzer: FatigueAnalyzer, frames) -> list[FatigueState]:
    return [analyzer.update(packet, face) for packet, face in frames]


def first_time(frames, states, key) -> float | None:
    return next((p.t for (p, _), s in zip(frames, states, strict=True) if getattr(s, key)), None)


@pytest.mark.parametrize("fps", [15, 24, 30])
def test_blinks_closures_microsleeps_yawn_and_perclos_at_any_frame_rate(astronaut_face, fps):
    frames = build_sequence(astronaut_face, TIMELINE, 60.0, fps, seed=fps)
    intervals = np.diff([p.t for p, _ in frames])
    assert intervals.std() > 0.1 / fps  # the timestamps really are jittered
    analyzer = FatigueAnalyzer(mode="wellness")
    assert isinstance(analyzer, Analyzer)
    states = run(analyzer, frames)
    end = states[-1]
    assert end.blinks == len(BLINK_STARTS)
    assert end.long_closures == len(CLOSURE_STARTS)
    assert end.microsleeps == len(CLOSURE_STARTS)
    assert end.yawns == 1
    # PERCLOS over the last 60 s against the timeline's own time at >= 80 % closure (the analyzer's closure
    # scale puts a shut eye at EAR = 0.2 x baseline, so its P80 is the builder's closure 0.64)
    level = P80_LEVEL * (1 - analyzer.closed_ear_ratio)
    t_end = frames[-1][0].t
    truth = true_time_above(TIMELINE, level, t_end - 60.0, t_end) / min(60.0, t_end)
    assert end.perclos == pytest.approx(truth, abs=0.01)
    assert end.blinks_per_min == pytest.approx(len(BLINK_STARTS) * 60.0 / t_end, abs=0.3)
    assert end.mean_blink_duration_s == pytest.approx(0.15, abs=0.05)
    # every blink was counted when it happened, and nothing before the first
    blink_counts = [s.blinks for s in states]
    for i, start in enumerate(BLINK_STARTS):
        before = blink_counts[int(np.searchsorted([p.t for p, _ in frames], start))]
        assert before == i
    # the microsleep flag rises 0.5 s into each closure (within a frame or two), not during blinks
    t_micro = first_time(frames, states, "microsleep")
    assert CLOSURE_STARTS[0] + 0.45 <= t_micro <= CLOSURE_STARTS[0] + 0.52 + 1.6 / fps
    assert not any(s.alert for s in states)  # wellness mode never alerts
    assert states[-1].drowsiness_probability > 0.5 > max(s.drowsiness_probability for s in states[:400])
    summary = analyzer.summary()
    assert REPORT_KEYS <= set(summary)
    assert summary["yawns"] == 1 and summary["blinks"] == len(BLINK_STARTS) and summary["microsleeps"] == 2
    assert summary["perclos"] == pytest.approx(truth * min(60.0, t_end) / t_end, abs=0.01)
    json.dumps(summary)
    json.dumps(end.to_json())


@pytest.mark.parametrize("fps", [15, 30])
def test_driver_mode_alerts_at_once_on_a_long_closure(astronaut_face, fps):
    frames = build_sequence(astronaut_face, TIMELINE, 45.0, fps, seed=100 + fps)
    states = run(FatigueAnalyzer(mode="driver"), frames)
    times = np.array([p.t for p, _ in frames])
    alerts = np.array([s.alert for s in states])
    assert not alerts[times < CLOSURE_STARTS[0]].any()  # blinks never alert
    t_alert = times[alerts][0]
    # 0.5 s of closure at the 50 % level, plus at most one frame interval: no smoothing delay
    assert CLOSURE_STARTS[0] + 0.45 <= t_alert <= CLOSURE_STARTS[0] + 0.5 + 1.6 / fps
    assert states[int(np.argmax(alerts))].alert_reason in {"long_closure", "microsleep"}
    assert alerts[(times > CLOSURE_STARTS[1] + 0.6) & (times < CLOSURE_STARTS[1] + 1.1)].all()


def test_open_eyes_stay_at_the_persons_baseline(astronaut_face):
    frames = build_sequence(astronaut_face, [], 8.0, 30, seed=3)
    analyzer = FatigueAnalyzer()
    states = run(analyzer, frames)
    assert states[0].status == "calibrating" and not states[0].calibrated
    end = states[-1]
    assert end.status == "ok" and end.calibrated and end.face_present
    assert end.ear == pytest.approx(end.ear_baseline, rel=0.05)
    assert end.ear_baseline == pytest.approx(0.5 * (0.3244 + 0.3366), rel=0.05)  # her real open-eye EAR
    assert max(s.eye_closure for s in states) < 0.2
    assert end.perclos == 0.0 and end.blinks == 0 and end.yawns == 0 and end.nods == 0
    assert end.drowsiness_probability < 0.05
    assert not any(s.eyes_closed or s.microsleep or s.mouth_open for s in states)


def test_calibration_follows_a_narrow_eyed_person(astronaut_face):
    """Eyes resting at 65 % of her opening (EAR about 0.21, 'closed' for a fixed 0.2-0.25 threshold) are the
    person's open eyes: no closure time, and her blinks still count."""
    blinks = [Episode("closure", s, 0.2) for s in (7.0, 11.0, 15.0)]
    frames = build_sequence(astronaut_face, blinks, 18.0, 24, seed=5, eye_rest=0.35)
    analyzer = FatigueAnalyzer()
    states = run(analyzer, frames)
    end = states[-1]
    assert end.ear < 0.23
    # only the blinks count as closed time (a fixed EAR threshold of 0.25 would call her eyes closed throughout)
    level = P80_LEVEL * (1 - analyzer.closed_ear_ratio)
    truth = true_time_above(blinks, level, 0.0, frames[-1][0].t) / frames[-1][0].t
    assert truth < 0.04 and end.perclos == pytest.approx(truth, abs=0.01)
    assert end.blinks == 3 and end.microsleeps == 0 and end.long_closures == 0


@pytest.mark.parametrize(
    "episode",
    [
        Episode("talk", 8.0, 6.0, amount=0.25, rate_hz=4.0),  # ordinary speech: fast, small
        Episode("talk", 8.0, 4.0, amount=0.35, rate_hz=3.0, base=0.3),  # loud, wide-open speech above threshold
        Episode("yawn", 8.0, 1.0, amount=0.6),  # a wide but short opening
    ],
    ids=["talking", "loud-talking", "short-opening"],
)
def test_speech_and_short_openings_are_not_yawns(astronaut_face, episode):
    frames = build_sequence(astronaut_face, [episode], 16.0, 30, seed=7)
    states = run(FatigueAnalyzer(), frames)
    assert states[-1].yawns == 0
    assert not any(s.yawning for s in states)
    if episode.kind == "talk":
        assert any(s.talking for s in states)
    if episode.base > 0:  # the loud speech does cross the yawn threshold: only its rhythm tells it apart
        assert sum(s.mouth_open for s in states) > 30


def test_a_yawn_hidden_by_a_hand_still_counts(astronaut_face):
    """The mouth opens for 2.5 s, then a hand covers the face (no face): the open spell ends there and counts."""
    timeline = [Episode("yawn", 8.0, 5.0, amount=0.6), Episode("no_face", 10.6, 3.0)]
    frames = build_sequence(astronaut_face, timeline, 16.0, 24, seed=8)
    assert run(FatigueAnalyzer(), frames)[-1].yawns == 1


def test_no_face_gives_a_no_face_state_not_numbers(astronaut_face):
    timeline = [Episode("no_face", 7.0, 2.0)]
    frames = build_sequence(astronaut_face, timeline, 12.0, 30, seed=9)
    analyzer = FatigueAnalyzer(mode="driver")
    states = run(analyzer, frames)
    for (_packet, face), state in zip(frames, states, strict=True):
        if face is None:
            assert state.face_present is False and state.status == "no_face"
            assert all(getattr(state, key) is None for key in MEASUREMENT_KEYS)
            assert state.drowsiness_probability is None and state.perclos is None
            assert state.alert is False and state.microsleep is False
        else:
            assert state.face_present is True and isinstance(state.ear, float)
    assert states[-1].face_present and states[-1].perclos == 0.0
    assert analyzer.summary()["face_seconds"] == pytest.approx(10.0, abs=0.2)  # the 2 s without a face excluded
    nobody = FatigueAnalyzer()
    state = nobody.update(FramePacket(t=0.0, image=np.zeros((2, 2, 3), np.uint8)), None)
    assert state.face_present is False and state.ear is None
    assert nobody.summary() is None


def test_a_closure_alert_outlives_the_face_slumping_out_of_view(astronaut_face):
    timeline = [Episode("closure", 8.0, 3.0), Episode("no_face", 8.8, 4.0)]
    frames = build_sequence(astronaut_face, timeline, 14.0, 30, seed=10)
    states = run(FatigueAnalyzer(mode="driver", alert_hold_s=3.0), frames)
    times = np.array([p.t for p, _ in frames])
    alerts = np.array([s.alert for s in states])
    assert alerts[(times > 8.6) & (times < 11.5)].all()
    assert not alerts[(times > 12.0) & (times < 12.8)].any()


def test_nods_and_driver_distraction(astronaut_face):
    timeline = [
        Episode("nod", 8.0, 0.8, amount=20.0),
        Episode("nod", 12.0, 0.8, amount=20.0),
        Episode("turn", 16.0, 2.0, amount=40.0),  # a glance: shorter than 3 s
        Episode("turn", 22.0, 4.5, amount=40.0),  # a distraction
    ]
    frames = build_sequence(astronaut_face, timeline, 30.0, 15, seed=11)
    analyzer = FatigueAnalyzer(mode="driver")
    states = run(analyzer, frames)
    times = np.array([p.t for p, _ in frames])
    assert states[-1].nods == 2
    distracted = np.array([s.distracted for s in states])
    assert not distracted[times < 21.0].any()
    first = times[distracted][0]
    assert 22.0 + 3.0 <= first <= 22.0 + 3.3
    assert states[int(np.argmax(distracted))].alert_reason == "distraction"
    assert analyzer.summary()["distractions"] == 1
    assert analyzer.summary()["head_away_s"] == pytest.approx(2.0 + 4.5, abs=0.6)


def test_settings_and_timestamps_are_checked(astronaut_face):
    with pytest.raises(ValueError, match="Unknown fatigue mode"):
        FatigueAnalyzer(mode="sleepy")
    with pytest.raises(ValueError, match="closed_ear_ratio"):
        FatigueAnalyzer(closed_ear_ratio=1.5)
    analyzer = FatigueAnalyzer(mode="kiosk")
    image = np.zeros((2, 2, 3), np.uint8)
    first = analyzer.update(FramePacket(t=1.0, image=image), astronaut_face)
    assert analyzer.update(FramePacket(t=0.5, image=image), astronaut_face) is first  # out of order: ignored
    with pytest.raises(ValueError, match="finite"):
        analyzer.update(FramePacket(t=math.nan, image=image), astronaut_face)
    analyzer.reset()
    assert analyzer.summary() is None


def test_real_pixels_through_the_video_tracker_blink_and_microsleep(astronaut_bgr, astronaut_face):
    """End to end on pixels: the portrait with its eyes painted shut for 1.2 s and for 0.2 s, tracked by FaceMesh
    in video mode at 15 fps with jittered times and sensor noise."""
    import cv2
    from fatigue_sequences import frame_times, paint_closed_eyes

    from smartmirror.face import FaceTracker

    size = (320, 320)
    open_image = cv2.resize(astronaut_bgr, size, interpolation=cv2.INTER_AREA)
    shut_image = cv2.resize(paint_closed_eyes(astronaut_bgr, astronaut_face), size, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    analyzer = FatigueAnalyzer(mode="driver")
    alerts = []
    with FaceTracker() as tracker:
        for i, t in enumerate(frame_times(10.0, 15, seed=15)):
            shut = 5.0 <= t < 6.2 or 8.0 <= t < 8.2
            noisy = (shut_image if shut else open_image) + rng.integers(-2, 3, open_image.shape)
            image = np.clip(noisy, 0, 255).astype(np.uint8)
            state = analyzer.update(FramePacket(t=float(t), image=image, index=i), tracker.process(image))
            alerts.append((float(t), state.alert))
    assert state.blinks == 1 and state.long_closures == 1 and state.microsleeps == 1
    assert state.yawns == 0 and state.nods == 0
    assert 0.11 <= state.perclos <= 0.15  # 1.4 s of 10 s with the eyes shut
    first_alert = next(t for t, alert in alerts if alert)
    assert 5.45 <= first_alert <= 5.5 + 1.6 / 15
