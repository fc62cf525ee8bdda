"""``smartmirror train spo2`` end to end on generated clips with reference readings, and its data layout checks.

The clips come from ``smartmirror.synth`` (the astronaut portrait with a per-channel pulse); each clip's red
pulse amplitude follows the assumed synthetic ratio-of-ratios law for its SpO2 (``synthetic_bvp_weights``), so
there is something to learn; the reference ``spo2.csv`` holds timed readings around that value.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

SPO2_LEVELS = (99.0, 86.0, 93.0, 90.0, 97.0, 88.0, 95.0, 91.5)


@pytest.fixture(scope="module")
def spo2_dataset(tmp_path_factory):
    from smartmirror.synth import SynthConfig, make_clip
    from smartmirror.vitals.spo2_data import synthetic_bvp_weights

    root = tmp_path_factory.mktemp("spo2_data")
    for i, level in enumerate(SPO2_LEVELS):
        folder = root / f"person{i:02d}"
        config = SynthConfig(duration_s=5.0, fps=30.0, width=320, height=240, heart_rate_bpm=60.0 + 7 * i,
                             seed=i, extra={"bvp_weights_bgr": synthetic_bvp_weights(level)})
        make_clip(folder, config)
        (folder / "spo2.csv").write_text(f"time_s,spo2_percent\n0,{level}\n2.5,{level + 0.2}\n5,{level}\n")
    return root


def test_train_spo2_learns_from_clips_and_reports_a_heldout_error(spo2_dataset, tmp_path):
    import torch

    from smartmirror.cli.app import app
    from smartmirror.vitals.spo2_model import TrainedSpO2Model

    out = tmp_path / "model"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, [
            "train", "spo2", str(spo2_dataset), "--out", str(out), "--window-frames", "64", "--hop-frames", "4",
            "--heldout-fraction", "0.25", "--epochs", "30", "--patience", "10", "--lr", "1e-3", "--json",
        ])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    history = summary["history"]
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]  # the loss falls
    assert len(summary["heldout_clips"]) == 2 and not set(summary["heldout_clips"]) & set(summary["train_clips"])
    assert summary["heldout_windows"] > 20
    # whole clips never seen in training: better than always answering the training mean
    assert summary["heldout_mae_percent"] < 0.7 * summary["baseline_mae_percent"], summary
    assert json.loads((out / "spo2_training.json").read_text())["heldout_mae_percent"] == summary[
        "heldout_mae_percent"]
    model = TrainedSpO2Model.load(out / "spo2_model.pt")
    assert "8 clips" not in model.trained_on and "6 clips" in model.trained_on
    # a second run reads the cached windows instead of tracking the videos again
    assert len(list((out / "cache").glob("*.npz"))) == len(SPO2_LEVELS)


def test_reference_files_are_read_and_checked(tmp_path):
    from smartmirror.vitals.spo2_data import SpO2DataError, find_spo2_clips, read_reference

    good = tmp_path / "a.csv"
    good.write_text("# oximeter export\ntime_s,spo2_percent\n0,97\n1.5,96\n3,98\n")
    times, values = read_reference(good)
    assert times.tolist() == [0, 1.5, 3] and values.tolist() == [97, 96, 98]
    single = tmp_path / "b.csv"
    single.write_text("95\n")
    assert read_reference(single)[0] is None
    for text, message in [("", "no readings"), ("0,97\n0,96\n", "increase"), ("0,120\n", "outside"),
                          ("0,97\nx,96\n", "not a number"), ("0,97,1\n", "expected")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(SpO2DataError, match=message):
            read_reference(bad)
    (tmp_path / "clip1").mkdir()
    (tmp_path / "clip1" / "spo2.csv").write_text("97\n")
    with pytest.raises(SpO2DataError, match="no video"):
        find_spo2_clips(tmp_path)
    with pytest.raises(SpO2DataError, match="not a folder"):
        find_spo2_clips(tmp_path / "missing")


def test_window_targets_and_relative_features():
    from smartmirror.vitals.spo2_data import SpO2Clip, relative_windows

    clip = SpO2Clip("c", video=None, times_s=np.array([0.0, 10.0]), spo2_percent=np.array([90.0, 100.0]))
    assert clip.target(0.0, 10.0) == pytest.approx(95.0)
    assert clip.target(20.0, 30.0) == pytest.approx(100.0)  # held at the last reading
    rgb = np.tile([100.0, 120.0, 80.0], (100, 1)) * (1 + 0.01 * np.sin(np.arange(100) / 3))[:, None]
    windows, starts = relative_windows(rgb, 40, 20)
    assert windows.shape == (4, 40, 3) and starts.tolist() == [0, 20, 40, 60]
    assert np.abs(windows.mean(axis=1)).max() < 1e-6 and 0.005 < np.abs(windows).max() < 0.02
    with pytest.raises(ValueError, match="window_frames"):
        relative_windows(rgb, 300, 10)


def test_train_spo2_errors_are_clear(tmp_path):
    from smartmirror.cli.app import app

    result = CliRunner().invoke(app, ["train", "spo2", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a folder" in result.output
    result = CliRunner().invoke(app, ["train", "spo2", str(tmp_path)])
    assert result.exit_code == 2 and "no clips" in result.output
