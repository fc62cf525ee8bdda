"""Dataset evaluation on a Dask cluster: clips per minute for 1 and 2 workers, and the cluster's per-clip overhead.

The clips are made by ``smartmirror synth`` (UBFC layout, the astronaut, fixed seeds) into ``--cache`` and
reused. Each run evaluates every clip once (decode, face tracking, the ``--method`` methods: the work of
``smartmirror eval``):

- in-process: one clip after another in this process (``smartmirror eval``'s default);
- N workers: a LocalCluster of N worker processes (one thread each) on 127.0.0.1, as ``eval --workers N``.

Printed per mode: wall time start to end (cluster start-up and model loading included), steady throughput in
clips/minute (from the completion times of the first to the last clip), seconds per clip, and for clusters
the start-up (cluster plus models) and the per-clip overhead against in-process (steady seconds per clip of
1 worker minus that of in-process). The workers' peak resident memory (VmHWM) is printed too: the figure the
README quotes for sizing workers (use ``--width 640 --height 480 --duration 30`` for a webcam-sized clip).

Run: ``.venv/bin/python benchmarks/eval_scaling.py`` (first run renders the clips: about 10 s each).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_clips(folder: Path, count: int, duration: float, width: int, height: int) -> Path:
    """``smartmirror synth --subjects count`` into ``folder`` unless it is there already."""
    if len(list(folder.glob("subject*/ground_truth.txt"))) != count:
        print(f"rendering {count} clips into {folder} ...", file=sys.stderr)
        command = [sys.executable, "-m", "smartmirror.cli.app", "synth", str(folder), "--subjects", str(count),
                   "--duration", str(duration), "--width", str(width), "--height", str(height), "--codec", "mjpeg"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return folder


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_run(clips: list, methods: tuple[str, ...], options, report: bool) -> dict:
    """Evaluate (or with ``report`` analyse) every clip; completion times relative to the start."""
    from smartmirror.batch import TaskFailure, WarmModels, run_clips
    from smartmirror.clip_jobs import AnalyzeJob, analyze_clip
    from smartmirror.vitals.evaluation import evaluate_clip_methods

    if report:  # smartmirror analyze with every section: one JSON line per clip
        sections = ("emotion", "fatigue")
        task, items = analyze_clip, [AnalyzeJob(str(c.video), method=methods[0], sections=sections) for c in clips]
        warm = WarmModels(methods[:1], sections)
    else:
        task, items, warm = functools.partial(evaluate_clip_methods, methods=methods), clips, WarmModels(methods)
    start = time.perf_counter()
    done, failed = [], 0
    for _, outcome in run_clips(task, items, options, label="bench", warm=warm):
        done.append(time.perf_counter() - start)
        if isinstance(outcome, TaskFailure) or "error" in outcome:
            failed += 1
        elif not report:
            failed += any(e["error"] for e in outcome.values())
    steady = (done[-1] - done[0]) / (len(done) - 1) if len(done) > 1 else done[-1]
    return {"wall_s": done[-1], "first_s": done[0], "steady_s_per_clip": steady, "failed": failed}


def main() -> None:
    from smartmirror.batch import ClusterOptions
    from smartmirror.paths import user_cache_dir
    from smartmirror.vitals.evaluation import dataset_clips

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6, help="Number of clips (default 6).")
    parser.add_argument("--duration", type=float, default=10.0, help="Clip length, s (default 10).")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--method", default="pos", help="Pulse method(s), comma-separated (default pos).")
    parser.add_argument("--workers", default="1,2", help="Cluster sizes to measure (default 1,2).")
    parser.add_argument("--report", action="store_true",
                        help="Time `analyze` with every section (emotion, fatigue) instead of `eval`.")
    parser.add_argument("--cache", type=Path, default=None, help="Folder for the generated clips.")
    args = parser.parse_args()

    from distributed import Client

    from smartmirror.batch import local_cluster

    cache = args.cache or user_cache_dir() / "bench-eval-scaling"
    folder = make_clips(cache / f"{args.clips}x{args.duration:g}s-{args.width}x{args.height}", args.clips,
                        args.duration, args.width, args.height)
    clips = dataset_clips(folder)
    methods = tuple(m.strip() for m in args.method.split(","))
    print(f"{len(clips)} clips of {args.duration:g} s at {args.width}x{args.height}, methods {','.join(methods)}, "
          f"{'analyze (all sections)' if args.report else 'eval'}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    here = timed_run(clips, methods, ClusterOptions(), args.report)
    print(f"in-process: wall {here['wall_s']:.1f} s, {60 / here['steady_s_per_clip']:.1f} clips/min steady, "
          f"{here['steady_s_per_clip']:.2f} s/clip, peak RSS {peak_rss_mb():.0f} MiB")
    for workers in (int(w) for w in args.workers.split(",")):
        started = time.perf_counter()
        with local_cluster(workers) as cluster:
            cluster_s = time.perf_counter() - started
            run = timed_run(clips, methods, ClusterOptions(scheduler=cluster.scheduler_address),
                            args.report)
            with Client(cluster.scheduler_address) as client:
                peaks = sorted(client.run(peak_rss_mb).values())
        wall = cluster_s + run["wall_s"]
        startup = cluster_s + run["first_s"] - here["steady_s_per_clip"]
        overhead = run["steady_s_per_clip"] * workers - here["steady_s_per_clip"]
        plural = "s" if workers > 1 else ""
        print(f"{workers} worker{plural}: wall {wall:.1f} s ({len(clips) / wall * 60:.1f} clips/min "
              f"end to end), {60 / run['steady_s_per_clip']:.1f} clips/min steady, start-up {startup:.1f} s "
              f"(cluster {cluster_s:.1f} s + models), per-clip overhead {overhead:+.2f} s/clip per worker, "
              f"worker peak RSS {', '.join(f'{p:.0f}' for p in peaks)} MiB, failed {run['failed']}")


if __name__ == "__main__":
    main()
