"""The typed clip report: analyze_video's dict round-trips through :class:`Report` key for key."""

from __future__ import annotations

import json

import pydantic
import pytest

from smartmirror.report import analyze_video
from smartmirror.report_model import Report

#: The clip shared with test_report.py and test_vitals_video.py (made once per session).
CLIP = {"duration_s": 12, "heart_rate_bpm": 70, "seed": 8, "width": 320, "height": 240}


def test_analyze_video_round_trips_through_the_report_dataclass(synth_clip):
    folder, truth = synth_clip(**CLIP)
    report = json.loads(json.dumps(analyze_video(folder / "vid.avi", identity=True)))  # what `analyze --json` prints
    typed = Report.from_json(report)
    assert typed.to_json() == report and list(typed.to_json()) == list(report)  # same keys, values and order
    assert typed.heart_rate_bpm == pytest.approx(truth.heart_rate_bpm, abs=2.0)
    assert typed.quality.frames == report["quality"]["frames"] and typed.video.name == "vid.avi"
    assert typed.fatigue.face_seconds > 10.0 and typed.emotion.label in typed.emotion.probabilities
    assert typed.identity.frames_used > 0 and typed.faces.warning is None and typed.timings_s.total > 0
    assert typed.stress is None or 0.0 <= typed.stress.score <= 100.0


def test_a_report_missing_a_key_is_refused():
    with pytest.raises(pydantic.ValidationError, match="timings_s"):
        Report.from_json({"heart_rate_bpm": None, "heart_rate_confidence": None, "pulse_snr_db": None, "hrv": None,
                          "respiration_rate_bpm": None, "spo2_percent": None, "stress": None, "emotion": None,
                          "fatigue": None, "identity": None, "quality": None,
                          "faces": {"max_faces_seen": 1, "frames_with_several_faces": 0, "warning": None},
                          "spo2": None, "pulse_method": "pos", "video": {"name": "a.mp4", "duration_s": None}})
