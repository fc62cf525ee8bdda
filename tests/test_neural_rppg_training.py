"""``smartmirror train rppg``: datasets, end-to-end training on synthetic clips, resume, held-out accuracy, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from smartmirror.vitals import checkpoints, training, training_data
from smartmirror.vitals.ground_truth import DatasetError
from smartmirror.vitals.training import TrainConfig

TRAIN_HR_BPM = (52.0, 64.0, 76.0, 88.0, 100.0, 112.0)
HELD_OUT_HR_BPM = (58.0, 94.0)
CLIP = {"duration_s": 5.0, "width": 128, "height": 96, "pulse_amplitude": 0.03, "hrv_sd_ms": 10.0,
        "breath_motion_px": 0.5}


def _ubfc_set(synth_clip, root: Path, rates: tuple[float, ...], seed0: int) -> Path:
    """A UBFC-layout folder of synthetic clips (the session cache makes each clip once)."""
    root.mkdir(parents=True, exist_ok=True)
    for i, hr in enumerate(rates):
        directory, _ = synth_clip(heart_rate_bpm=hr, seed=seed0 + i, **CLIP)
        shutil.copytree(directory, root / f"subject{i}", dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def datasets(synth_clip, tmp_path_factory):
    base = tmp_path_factory.mktemp("rppg_sets")
    return {
        "train": _ubfc_set(synth_clip, base / "train", TRAIN_HR_BPM, 100),
        "held_out": _ubfc_set(synth_clip, base / "held_out", HELD_OUT_HR_BPM, 200),
        "cache": base / "cache",
    }


def _config(arch: str, epochs: int) -> TrainConfig:
    if arch == "resnet_tcn":
        return TrainConfig(arch=arch, epochs=epochs, lr=2e-3, batch_size=4, window_frames=64, stride_frames=8,
                           input_size=(36, 36), width=8, crop="center", val_fraction=0.0, seed=0)
    return TrainConfig(arch=arch, epochs=epochs, lr=3e-3, batch_size=4, window_frames=90, stride_frames=8,
                       input_size=(36, 36), crop="center", val_fraction=0.0, seed=0)


def test_ground_truth_files_and_layouts(tmp_path, datasets):
    records = training_data.find_clips(datasets["train"])
    assert [r.name for r in records] == [f"subject{i}" for i in range(len(TRAIN_HR_BPM))]
    assert records[0].video.name == "vid.avi" and len(records[0].ppg) == len(records[0].times_s)
    flat = tmp_path / "flat"  # the flat layout: name.avi + name.txt in one folder
    flat.mkdir()
    shutil.copy(records[0].video, flat / "alice.avi")
    shutil.copy(datasets["train"] / "subject0" / "ground_truth.txt", flat / "alice.txt")
    (flat / "notes.txt").write_text("no video beside me\n")
    assert [r.name for r in training_data.find_clips(flat)] == ["alice"]
    (flat / "bob.avi").write_bytes(records[0].video.read_bytes())
    (flat / "bob.txt").write_text("0.1 0.2 0.3\n70 70 70\n")  # too short: refused with the eval's code
    with pytest.raises(DatasetError) as bad:
        training_data.find_clips(flat)
    assert bad.value.code == "bad_ground_truth"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as empty:
        training_data.find_clips(tmp_path / "empty")
    assert empty.value.code == "no_clips"
    with pytest.raises(DatasetError) as missing:
        training_data.find_clips(tmp_path / "missing")
    assert missing.value.code == "not_found"


def test_resnet_tcn_trains_resumes_and_beats_the_untrained_network(datasets, tmp_path):
    """The ResNet-18 + TCN pulse network: the loss falls, a resumed run continues, held-out heart rates improve."""
    out = tmp_path / "ckpt"
    first = training.train_rppg(datasets["train"], out, _config("resnet_tcn", 4), progress=False,
                                cache_dir=datasets["cache"], threads=1)
    assert [h["epoch"] for h in first.history] == [1, 2, 3, 4]
    resumed = training.train_rppg(datasets["train"], out, _config("resnet_tcn", 6), progress=False,
                                  cache_dir=datasets["cache"], threads=1)
    assert resumed.history[:4] == first.history and [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    losses = [h["train_loss"] for h in resumed.history]
    assert min(losses[-2:]) < 0.5 * losses[0]

    model, info = checkpoints.load_trained(resumed.checkpoint)
    trained = checkpoints.evaluate_heart_rate(model, info, datasets["held_out"], cache_dir=datasets["cache"])
    torch.manual_seed(0)
    untrained_model = training.build_model(_config("resnet_tcn", 1)).eval()
    untrained = checkpoints.evaluate_heart_rate(untrained_model, info, datasets["held_out"],
                                                cache_dir=datasets["cache"])
    trained_mae = np.mean([r["hr_mae_bpm"] for r in trained])
    untrained_mae = np.mean([r["hr_mae_bpm"] for r in untrained])
    assert trained_mae < 5.0 < untrained_mae - 10.0

    with pytest.raises(ValueError, match="another configuration"):
        training.train_rppg(datasets["train"], out, _config("ultralight", 7), progress=False,
                            cache_dir=datasets["cache"])


def test_ultralight_trains_end_to_end(datasets, tmp_path):
    """UltraLightNet, the ~20K-parameter regressor: runs, lowers its loss, predicts heart rates in bpm.

    (In this budget it learns little more than the training set's mean rate: averaging over time discards most
    of the rhythm. The ResNet-18 + TCN test above is the one that must learn the pulse.)
    """
    model = training.build_model(_config("ultralight", 1))
    assert 15_000 < sum(p.numel() for p in model.parameters()) < 35_000
    result = training.train_rppg(datasets["train"], tmp_path / "ul", _config("ultralight", 4), progress=False,
                                 cache_dir=datasets["cache"], threads=1)
    losses = [h["train_loss"] for h in result.history]
    assert min(losses[1:]) < losses[0]
    model, info = checkpoints.load_trained(result.best_checkpoint)
    rows = checkpoints.evaluate_heart_rate(model, info, datasets["held_out"], cache_dir=datasets["cache"])
    assert all(30.0 < r["hr_pred_bpm"] < 200.0 for r in rows)


def test_train_command_reports_bad_input_and_runs(datasets, tmp_path):
    import typer
    from typer.testing import CliRunner

    from smartmirror.cli.train_vitals import train_rppg

    app = typer.Typer()
    app.command()(train_rppg)
    app.command("noop")(lambda: None)  # a second command keeps the first addressable by name
    runner = CliRunner()
    missing = runner.invoke(app, ["train-rppg", str(tmp_path / "missing")])
    assert missing.exit_code == 2 and "No such dataset folder" in missing.output and "Traceback" not in missing.output
    unknown = runner.invoke(app, ["train-rppg", str(datasets["train"]), "--arch", "vgg"])
    assert unknown.exit_code == 2 and "unknown architecture" in unknown.output
    ok = runner.invoke(app, ["train-rppg", str(datasets["train"]), "--arch", "ultralight", "--epochs", "1",
                             "--window-frames", "90", "--input-size", "36", "--out", str(tmp_path / "cli"),
                             "--json"], env={"SMARTMIRROR_CACHE_DIR": str(datasets["cache"])})
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output.strip().splitlines()[-1])
    assert len(report["history"]) == 1 and Path(report["checkpoint"]).exists()
