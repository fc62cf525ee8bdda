"""Many clips on a real Dask cluster (worker processes on 127.0.0.1): `analyze` as JSON Lines and `eval`.

Checked against the in-process run: the same per-clip numbers, a corrupt clip's error line while the rest finish,
no clip lost when a worker process is killed mid-run, and a clip reported as failed (with its error object)
once its tries are spent.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import typer
from typer.testing import CliRunner

from smartmirror.batch import ClusterOptions, TaskFailure, run_clips
from smartmirror.cli.analyze import analyze
from smartmirror.cli.eval import eval_dataset
from smartmirror.cli.output import EXIT_BAD_INPUT
from smartmirror.clip_jobs import AnalyzeJob, analyze_clip, expand_clips

#: Short, low-resolution clips (the report needs >= 6 s of face).
CLIPS = [{"duration_s": 8, "heart_rate_bpm": rate, "seed": seed, "width": 320, "height": 240}
         for rate, seed in ((64, 71), (88, 72), (112, 73))]


def _without_timings(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "timings_s"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, synth_clip):
    """Three good clips and one corrupt one (a header and a sliver of frames) in one folder."""
    folder = tmp_path_factory.mktemp("batch")
    for i, config in enumerate(CLIPS):
        clip_dir, truth = synth_clip(**config)
        (folder / f"clip{i}.avi").symlink_to(clip_dir / "vid.avi")
        (folder / f"clip{i}.bpm").write_text(str(truth.heart_rate_bpm))  # not a video: not picked up
    good = (folder / "clip0.avi").read_bytes()
    (folder / "corrupt.avi").write_bytes(good[:6000])
    return folder


@pytest.fixture(scope="module")
def in_process(clips):
    """Each clip's report line, one after another in this process."""
    names = expand_clips([str(clips)])
    lines = dict(run_clips(analyze_clip, [AnalyzeJob(n) for n in names]))
    return {names[i]: line for i, line in lines.items()}


def _cli(command):
    app = typer.Typer()
    app.command()(command)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_cluster_gives_the_in_process_lines_and_a_corrupt_clips_error(clips, in_process, tmp_path):
    assert set(in_process) == {str(clips / n) for n in ("clip0.avi", "clip1.avi", "clip2.avi", "corrupt.avi")}
    assert in_process[str(clips / "corrupt.avi")]["error"]["code"] in {"not_a_video", "corrupt_video",
                                                                         "no_frames", "too_short"}
    out = tmp_path / "reports.jsonl"
    done = _cli(analyze)(str(clips / "*.avi"), "--workers", 2, "--sections", "", "--output", out)
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 4 and {line["clip"] for line in lines} == set(in_process)
    for line in lines:
        expected = in_process[line["clip"]]
        assert _without_timings(line) == _without_timings(expected)
        if "error" not in line:
            assert line["heart_rate_bpm"] is not None
    for line in lines:
        if "error" not in line:
            truth = float(open(line["clip"].replace(".avi", ".bpm")).read())
            assert line["heart_rate_bpm"] == pytest.approx(truth, abs=3.0)  # 8 s clips: a sanity check


def test_eval_on_the_cluster_matches_in_process(clips, synth_clip, tmp_path):
    from smartmirror.vitals.evaluation import compare_methods

    root = tmp_path / "dataset"
    root.mkdir()
    for i, config in enumerate(CLIPS[:2]):
        clip_dir, _ = synth_clip(**config)
        (root / f"s{i}").mkdir()
        for name in ("vid.avi", "ground_truth.txt"):
            (root / f"s{i}" / name).symlink_to(clip_dir / name)
    (root / "broken").mkdir()
    (root / "broken" / "vid.avi").symlink_to(clips / "corrupt.avi")
    (root / "broken" / "ground_truth.txt").symlink_to(clip_dir / "ground_truth.txt")
    here = compare_methods(root, ["pos", "chrom"], show=False)
    done = _cli(eval_dataset)(root, "--method", "pos,chrom", "--workers", 2, "--json")
    assert done.exit_code == 0, done.output
    there = json.loads(done.stdout)
    assert there == here
    assert [f["name"] for f in there["results"]["pos"]["files"]] == ["broken", "s0", "s1"]
    assert there["results"]["pos"]["mean"]["files_failed"] == 1
    assert there["results"]["pos"]["files"][0]["error"]["code"] in {"not_a_video", "corrupt_video", "no_frames",
                                                                     "no_face"}


def _kill_a_busy_worker(address: str, seen: list, killed: dict) -> None:
    """Once a clip is running, SIGKILL the worker process that runs it (its nanny starts a new one)."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                time.sleep(1.0)  # well inside the first clip (each takes several seconds)
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                killed.update(pid=pid, results_before=len(seen))
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)


@pytest.mark.parametrize("allowed_failures", [2, 0])
def test_a_worker_killed_mid_run(clips, in_process, allowed_failures):
    """With tries left the killed worker's clip runs again elsewhere and nothing is lost; with none it is
    reported as failed (worker_died) and every other clip still finishes."""
    from distributed import Client

    from smartmirror.batch import WarmModels, local_cluster

    names = [str(clips / f"clip{i}.avi") for i in (0, 1, 2, 0)]      # four tasks: both workers stay busy
    with local_cluster(2, retries=allowed_failures) as cluster:
        seen: list = []
        killed: dict = {}
        killer = threading.Thread(target=_kill_a_busy_worker, args=(cluster.scheduler_address, seen, killed))
        killer.start()
        options = ClusterOptions(scheduler=cluster.scheduler_address, retries=allowed_failures)
        for index, outcome in run_clips(analyze_clip, [AnalyzeJob(n) for n in names], options,
                                        warm=WarmModels(["pos"])):
            seen.append((index, outcome))
        killer.join()
        with Client(cluster.scheduler_address) as client:               # the restarted worker loaded its models
            client.wait_for_workers(2, timeout=120)
            deadline = time.monotonic() + 120
            while True:
                models = client.run(lambda dask_worker: getattr(dask_worker, "smartmirror_models", None))
                if all(models.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    assert killed and killed["results_before"] < len(names)
    assert len(models) == 2 and all(m == ["facemesh"] for m in models.values())
    assert sorted(i for i, _ in seen) == list(range(len(names)))
    failures = [(i, o) for i, o in seen if isinstance(o, TaskFailure)]
    if allowed_failures:
        assert not failures
    else:
        assert 1 <= len(failures) <= 2 and all(o.code == "worker_died" and o.message for _, o in failures)
    for index, outcome in seen:
        if not isinstance(outcome, TaskFailure):
            assert _without_timings(outcome) == _without_timings(in_process[names[index]])


def test_batch_inputs_and_errors(clips, tmp_path):
    assert expand_clips([str(clips)]) == sorted(str(p) for p in clips.iterdir() if p.suffix == ".avi")
    assert expand_clips([f"file://{clips}/clip1.avi"]) == [f"{clips}/clip1.avi"]
    run = _cli(analyze)
    both = run(str(clips / "clip0.avi"), "--workers", 2, "--scheduler", "tcp://127.0.0.1:1")
    assert both.exit_code == EXIT_BAD_INPUT and json.loads(both.stdout)["error"]["code"] == "invalid_argument"
    rate = run(str(clips / "clip0.avi"), "--landmarks-every", 0, "--json")
    assert rate.exit_code == EXIT_BAD_INPUT and json.loads(rate.stdout)["error"] == {
        "code": "invalid_argument", "message": "--landmarks-every must be at least 1, got 0"}
    nothing = run(str(tmp_path / "*.mp4"))
    assert nothing.exit_code == EXIT_BAD_INPUT and json.loads(nothing.stdout)["error"]["code"] == "not_found"
    away = run(str(clips), "--scheduler", "tcp://127.0.0.1:9", "--sections", "")
    assert away.exit_code == EXIT_BAD_INPUT and json.loads(away.stdout)["error"]["code"] == "cluster_unavailable"
    only_bad = run(str(clips / "corrupt.avi"), str(tmp_path / "missing.avi"), "--sections", "")
    assert only_bad.exit_code == EXIT_BAD_INPUT                           # every clip failed: non-zero
    codes = [json.loads(line)["error"]["code"] for line in only_bad.stdout.splitlines()]
    assert len(codes) == 2 and "not_found" in codes


def test_clips_from_an_fsspec_url_are_copied_privately_and_removed(clips, in_process, tmp_path, monkeypatch):
    """A URL is opened where the task runs (here in-process, fsspec's memory filesystem): the same report."""
    import tempfile

    import fsspec

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fs = fsspec.filesystem("memory")
    fs.pipe("/batch-test/clip1.avi", (clips / "clip1.avi").read_bytes())
    fs.pipe("/batch-test/notes.txt", b"not a clip")
    assert expand_clips(["memory://batch-test/"]) == ["memory:///batch-test/clip1.avi"]
    out = tmp_path / "url.jsonl"
    done = _cli(analyze)("memory://batch-test/", "--sections", "", "-o", out)
    assert done.exit_code == 0, done.output
    (line,) = [json.loads(text) for text in out.read_text().splitlines()]
    assert line["clip"] == "memory:///batch-test/clip1.avi"
    assert _without_timings(line) == {**_without_timings(in_process[str(clips / "clip1.avi")]),
                                      "clip": line["clip"]}
    assert not list(tmp_path.glob("smartmirror-clip-*"))                  # the private copy is gone
    fs.rm("/batch-test", recursive=True)

