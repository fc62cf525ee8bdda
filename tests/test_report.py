"""The clip report and `smartmirror analyze`: the keys of docs/states.md, one JSON object, errors for bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from smartmirror.cli.analyze import analyze
from smartmirror.cli.output import EXIT_BAD_INPUT
from smartmirror.errors import error_object
from smartmirror.frames import FramePacket, VideoError
from smartmirror.report import analyze_video
from smartmirror.synth import write_video

#: The clip shared with test_vitals_video.py (the synth_clip fixture makes it once per session).
CLIP = {"duration_s": 12, "heart_rate_bpm": 70, "seed": 8, "width": 320, "height": 240}

TOP_KEYS = {"heart_rate_bpm", "heart_rate_confidence", "pulse_snr_db", "hrv", "respiration_rate_bpm", "spo2_percent",
            "stress", "emotion", "fatigue", "identity", "quality", "timings_s"}


@pytest.fixture
def cli():
    app = typer.Typer()
    app.command()(analyze)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, synth_clip):
    folder = tmp_path_factory.mktemp("bad")
    clip_dir, _ = synth_clip(**CLIP)
    good = (clip_dir / "vid.avi").read_bytes()
    files = {
        "empty": folder / "empty.avi",
        "truncated": folder / "truncated.avi",
        "not_video": folder / "notes.avi",
        "short": folder / "short.avi",
        "no_face": folder / "wall.avi",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good[:6000])                     # header and a sliver of the first frame
    files["not_video"].write_text("this is a shopping list, not a video\n" * 50)
    files["short"].write_bytes(good[: len(good) // 5])             # cut after ~2 s of frames
    wall = np.full((240, 320, 3), 128, np.uint8)
    write_video(files["no_face"], (FramePacket(i / 30, wall, i) for i in range(90)), fps=30)
    return files


def test_report_has_the_design_keys_and_is_one_json_object(synth_clip):
    folder, truth = synth_clip(**CLIP)
    report = analyze_video(folder / "vid.avi", sections=())
    assert TOP_KEYS <= set(report)
    assert report["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=2.0)
    assert 0.0 <= report["heart_rate_confidence"] <= 1.0
    assert set(report["hrv"]) == {"sdnn_ms", "rmssd_ms", "pnn50", "lf_hf", "stress_index"}
    assert report["hrv"]["sdnn_ms"] is None                          # 12 s: too short for HRV, null not a guess
    assert report["respiration_rate_bpm"] is None                    # < 20 s
    assert report["stress"] == {"level": "low", "score": pytest.approx(report["stress"]["score"]),
                                "basis": "heart_rate_bands"}
    assert report["spo2"]["calibrated"] in (True, False) and report["spo2_percent"] is not None
    assert report["emotion"] is None and report["fatigue"] is None and report["identity"] is None
    quality = report["quality"]
    assert {"face_detected_ratio", "obstruction", "liveness", "frames", "fps"} <= set(quality)
    assert quality["frames"] == 360 and quality["fps"] == pytest.approx(30.0)
    assert set(report["timings_s"]) >= {"decode", "face", "vitals", "emotion", "fatigue", "total"}
    assert report["timings_s"]["total"] >= report["timings_s"]["face"] > 0
    json.dumps(report, allow_nan=False)                              # strict JSON: no NaN anywhere


def test_report_feeds_another_analyzer_from_the_same_face_pass(synth_clip):
    pytest.importorskip("smartmirror.fatigue")
    folder, _ = synth_clip(**CLIP)
    report = analyze_video(folder / "vid.avi", sections=("fatigue",))
    assert report["fatigue"] is not None and "perclos" in report["fatigue"]
    assert report["emotion"] is None
    with pytest.raises(VideoError) as caught:
        analyze_video(folder / "vid.avi", sections=("horoscope",))
    assert caught.value.code == "invalid_sections"


def test_error_object_shape():
    assert error_object("no_face", "No face") == {"error": {"code": "no_face", "message": "No face"}}


@pytest.mark.parametrize(
    ("kind", "codes"),
    [("empty", {"empty_file"}), ("truncated", {"not_a_video", "corrupt_video", "no_frames"}),
     ("not_video", {"not_a_video"}), ("short", {"too_short"}), ("no_face", {"no_face"})],
)
def test_bad_files_give_one_json_error_and_a_non_zero_exit(cli, bad_files, kind, codes):
    result = cli(bad_files[kind], "--json", "--sections", "")
    assert result.exit_code == EXIT_BAD_INPUT
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["error"]["code"] in codes and payload["error"]["message"]
    assert "Traceback" not in result.output


def test_missing_file_and_unknown_method(cli, tmp_path, synth_clip):
    missing = cli(tmp_path / "nope.mp4", "--json")
    assert missing.exit_code != 0 and json.loads(missing.stdout)["error"]["code"] == "not_found"
    folder, _ = synth_clip(**CLIP)
    wrong = cli(folder / "vid.avi", "--json", "--method", "telepathy")
    assert wrong.exit_code != 0
    error = json.loads(wrong.stdout)["error"]
    assert error["code"] == "invalid_method" and "pos" in error["message"]


def test_cli_prints_exactly_one_json_object_on_stdout(bad_files):
    """A real process: MediaPipe's and the libraries' logs must stay on stderr (FaceMesh runs on every frame)."""
    code = "import typer; from smartmirror.cli.analyze import analyze; typer.run(analyze)"
    done = subprocess.run([sys.executable, "-c", code, str(bad_files["no_face"]), "--json", "--sections", ""],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert json.loads(lines[0])["error"]["code"] == "no_face"


def test_human_readable_report(cli, synth_clip):
    folder, _ = synth_clip(**CLIP)
    result = cli(folder / "vid.avi", "--sections", "")
    assert result.exit_code == 0
    assert "Heart rate" in result.stdout and "bpm" in result.stdout and "not a medical device" in result.stdout
