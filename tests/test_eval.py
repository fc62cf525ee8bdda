"""Dataset evaluation (the pulse API's second call, `smartmirror eval`): UBFC and flat layouts, per-file and mean."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from smartmirror.cli.eval import eval_dataset
from smartmirror.cli.output import EXIT_BAD_INPUT
from smartmirror.vitals.ground_truth import DatasetError, find_clips, read_ground_truth

#: Clips shared with test_report.py and test_vitals_video.py (made once per session by synth_clip).
CLIP = {"duration_s": 12, "heart_rate_bpm": 70, "seed": 8, "width": 320, "height": 240}
SLOW_CLIP = {"duration_s": 10, "heart_rate_bpm": 48, "hrv_sd_ms": 30 * (72 / 48) ** 2, "head_motion_px": 2.0,
             "noise_sd": 2.0, "seed": 48, "width": 320, "height": 240}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, synth_clip):
    """Two UBFC subjects and one flat clip + .txt pair in one folder (links to the cached clips)."""
    root = tmp_path_factory.mktemp("dataset")
    truths = {}
    for name, config in (("subject1", CLIP), ("subject2", SLOW_CLIP)):
        folder, truth = synth_clip(**config)
        (root / name).mkdir()
        (root / name / "vid.avi").symlink_to(folder / "vid.avi")
        (root / name / "ground_truth.txt").symlink_to(folder / "ground_truth.txt")
        truths[name] = truth
    folder, truth = synth_clip(**CLIP)
    (root / "flat01.avi").symlink_to(folder / "vid.avi")
    lines = (folder / "ground_truth.txt").read_text().splitlines()
    (root / "flat01.txt").write_text(f"{lines[0]}\n\n{lines[2]}\n")     # flat layout: the HR line may be empty
    truths["flat01"] = truth
    return root, truths


@pytest.fixture(scope="module")
def evaluated(dataset):
    from smartmirror import evaluate_dataset

    root, truths = dataset
    return evaluate_dataset(root, method="pos", show=False), truths


def test_both_layouts_are_found(dataset):
    root, _ = dataset
    clips = find_clips(root)
    assert [c.name for c in clips] == ["subject1", "subject2", "flat01"]
    assert clips[2].truth.name == "flat01.txt"
    single = find_clips(root / "subject1")                                # one UBFC subject folder works too
    assert [c.name for c in single] == ["subject1"]


def test_ground_truth_readers(tmp_path, dataset):
    root, truths = dataset
    ubfc = read_ground_truth(root / "subject1" / "ground_truth.txt")
    assert len(ubfc.ppg) == len(ubfc.times_s) == len(truths["subject1"].frame_times_s)
    assert ubfc.heart_rate_bpm is not None
    flat = read_ground_truth(root / "flat01.txt")
    assert flat.heart_rate_bpm is None and np.allclose(flat.ppg, ubfc.ppg)
    xmp = tmp_path / "gtdump.xmp"
    xmp.write_text("\n".join(f"{1000 + 33 * i},{70 + i % 3},{98},{np.sin(i / 5):.4f}" for i in range(60)))
    dataset1 = read_ground_truth(xmp)
    assert dataset1.times_s[0] == 0.0 and dataset1.times_s[1] == pytest.approx(0.033)
    assert dataset1.heart_rate_bpm[:3].tolist() == [70, 71, 72]
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n\n0 1\n")
    with pytest.raises(DatasetError) as caught:
        read_ground_truth(bad)
    assert caught.value.code == "bad_ground_truth"


def test_per_file_and_mean_accuracy(evaluated):
    result, truths = evaluated
    assert result["method"] == "pos"
    files = {f["name"]: f for f in result["files"]}
    assert set(files) == {"subject1", "subject2", "flat01"}
    for name, entry in files.items():
        assert entry["error"] is None
        assert entry["hr_true_bpm"] == pytest.approx(truths[name].heart_rate_bpm, abs=3.0)
        assert entry["hr_pred_bpm"] == pytest.approx(truths[name].heart_rate_bpm, abs=2.0)
        assert entry["hr_mae_bpm"] < 2.0 and entry["hr_rmse_bpm"] >= entry["hr_mae_bpm"]
        assert entry["pulse_rmse"] < 0.25 and entry["pulse_mae"] <= entry["pulse_rmse"]
        assert entry["coverage"] > 0.5
    mean = result["mean"]
    assert mean["hr_mae_bpm"] == pytest.approx(np.mean([f["hr_mae_bpm"] for f in files.values()]), abs=1e-3)
    assert mean["files"] == 3 and mean["files_failed"] == 0
    json.dumps(result, allow_nan=False)


def test_eval_cli_json_and_errors(tmp_path, dataset):
    app = typer.Typer()
    app.command()(eval_dataset)
    runner = CliRunner()
    root, _ = dataset
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.avi").symlink_to((root / "flat01.avi").resolve())
    (flat / "a.txt").write_text((root / "flat01.txt").read_text())
    (flat / "b.avi").write_bytes(b"")                                    # a broken clip is reported, not fatal
    (flat / "b.txt").write_text((root / "flat01.txt").read_text())
    done = runner.invoke(app, [str(flat), "--json", "--method", "chrom"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout)
    assert [f["name"] for f in payload["files"]] == ["a", "b"]
    assert payload["files"][1]["error"]["code"] == "empty_file"
    assert payload["mean"]["files_failed"] == 1 and payload["mean"]["hr_mae_bpm"] < 2.0
    broken_only = tmp_path / "broken"
    broken_only.mkdir()
    (broken_only / "b.avi").write_bytes(b"")
    (broken_only / "b.txt").write_text((root / "flat01.txt").read_text())
    table = runner.invoke(app, [str(broken_only)])                    # every clip failed: the table, then rc != 0
    assert table.exit_code == EXIT_BAD_INPUT and "HR MAE" in table.stdout and "mean" in table.stdout
    assert "1 failed" in table.stdout and "all_clips_failed" in table.stderr
    all_failed = runner.invoke(app, [str(broken_only), "--json"])
    assert all_failed.exit_code == EXIT_BAD_INPUT
    payload = json.loads(all_failed.stdout)
    assert payload["error"]["code"] == "all_clips_failed" and "empty_file" in payload["error"]["message"]
    assert payload["files"][0]["error"]["code"] == "empty_file"       # the per-file errors are still there
    one_file = runner.invoke(app, [str(flat / "a.avi"), "--json"])     # a clip where a folder is expected
    assert one_file.exit_code == EXIT_BAD_INPUT
    error = json.loads(one_file.stdout)["error"]
    assert error["code"] == "not_a_folder" and "is a file" in error["message"] and "analyze" in error["message"]
    assert "No such dataset folder" not in error["message"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, code in ((empty, "no_clips"), (tmp_path / "missing", "not_found")):
        failed = runner.invoke(app, [str(folder), "--json"])
        assert failed.exit_code == EXIT_BAD_INPUT
        assert json.loads(failed.stdout)["error"]["code"] == code
    unknown = runner.invoke(app, [str(flat), "--json", "--method", "astrology"])
    assert unknown.exit_code == EXIT_BAD_INPUT and "choose one of" in json.loads(unknown.stdout)["error"]["message"]


def test_eval_compares_learned_and_unsupervised_methods_side_by_side(dataset, capsys):
    from smartmirror.vitals.evaluation import _print_comparison

    root, truths = dataset
    app = typer.Typer()
    app.command()(eval_dataset)
    single = root.parent / "one_subject"
    if not single.exists():
        single.mkdir()
        (single / "subject1").symlink_to(root / "subject1")
    result = CliRunner().invoke(app, [str(single), "--method", "pos,facephys-rlap", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["methods"] == ["pos", "facephys-rlap"]
    for name in payload["methods"]:
        mean = payload["results"][name]["mean"]
        assert mean["hr_mae_bpm"] is not None and mean["hr_mae_bpm"] < 3.0, (name, mean)
    _print_comparison(payload["methods"], payload["results"])  # the table the command prints without --json
    table = capsys.readouterr().out
    assert "pos" in table and "facephys-rlap" in table and "mean MAE" in table and "subject1" in table
    bad = CliRunner().invoke(app, [str(single), "--method", "pos,nope", "--json"])
    assert bad.exit_code == EXIT_BAD_INPUT
    assert "nope" in json.loads(bad.stdout)["error"]["message"]


def test_several_methods_share_one_decode_and_face_pass(dataset, monkeypatch):
    """`eval --method a,b,c`: one decode and one FaceMesh pass per clip, and each method's numbers unchanged."""
    from smartmirror import face, frames
    from smartmirror.vitals import video
    from smartmirror.vitals.evaluation import evaluate_clip, evaluate_clip_methods

    root, _ = dataset
    clip = find_clips(root / "subject1")[0]
    methods = ["pos", "chrom", "facephys-rlap"]
    alone = {m: evaluate_clip(clip, method=m) for m in methods}        # one decode each, as before
    calls = {"decode": 0, "face": 0}
    real_read, real_process = frames.read_video_packets, face.FaceTracker.process

    def counting_read(*args, **kwargs):
        calls["decode"] += 1
        return real_read(*args, **kwargs)

    def counting_process(self, image):
        calls["face"] += 1
        return real_process(self, image)

    monkeypatch.setattr(video, "read_video_packets", counting_read)
    monkeypatch.setattr(face.FaceTracker, "process", counting_process)
    shared = evaluate_clip_methods(clip, methods)
    assert calls["decode"] == 1 and calls["face"] == alone["pos"]["frames"]
    assert shared == alone
    for method in methods:
        assert shared[method]["error"] is None and shared[method]["hr_mae_bpm"] < 3.0, (method, shared[method])
