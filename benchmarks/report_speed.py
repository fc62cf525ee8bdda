"""The clip report's cost, start to exit: ``smartmirror analyze CLIP --json``, vitals only and with every section.

Usage::

    python benchmarks/report_speed.py [CLIP ...] [--clips 1] [--duration 30] [--runs 3] [--landmarks-every 5]

Without CLIP arguments the clips are rendered once by ``smartmirror synth --subjects N --codec h264`` (640x480,
30 fps, the truth in each clip's truth.json) into ``--clip-dir`` and reused (``benchmarks/peers.py`` makes the
same ones, in the same folder). Each mode runs as one process per clip and run, as a user pays it (imports and
model loading included); wall and CPU (user + sys of the process, all its threads) are measured from outside.

Modes: ``vitals`` (``--sections ""``), ``full`` (emotion and fatigue, the default report) and, with
``--landmarks-every N``, ``vitals-every-N`` (FaceMesh on every N-th frame, landmarks interpolated between; opt-in).
Printed per mode: the median wall and CPU seconds, the real-time factor (clip seconds / wall), the median of the
report's own stage timings (``timings_s``: decode, face, vitals, emotion, fatigue; seconds of wall time in those
threads) and the heart-rate error against truth.json. The load average is printed before and after: wall times
mean little on a busy machine (the report uses two cores), CPU time less so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peers import _env, make_clips, timed  # noqa: E402

STAGES = ("decode", "face", "vitals", "emotion", "fatigue")


def truth_bpm(clip: Path) -> float | None:
    """The clip's true mean heart rate from the truth.json beside it (None when there is none)."""
    path = clip.parent / "truth.json"
    if not path.exists():
        return None
    truth = json.loads(path.read_text())
    for key in ("heart_rate_bpm", "mean_heart_rate_bpm", "hr_bpm"):
        if isinstance(truth.get(key), int | float):
            return float(truth[key])
    return None


def run_mode(name: str, extra: list[str], clips: list[Path], runs: int, timeout: float) -> dict:
    """``runs`` processes per clip; medians of wall, CPU, stage timings and the heart-rate errors."""
    command = [sys.executable, "-m", "smartmirror.cli.app", "analyze", "--json", *extra]
    walls, cpus, errors, factors = [], [], [], []
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for run in range(runs):
        for clip in clips:
            wall, cpu, lines, error = timed([*command, str(clip)], _env(project=True), timeout)
            if error is not None:
                print(f"{name} {clip}: {error}", file=sys.stderr)
                continue
            report = lines[-1]
            walls.append(wall)
            cpus.append(cpu)
            duration = (report.get("video") or {}).get("duration_s")
            if duration:
                factors.append(duration / wall)
            for stage in STAGES:
                stages[stage].append(float((report.get("timings_s") or {}).get(stage) or 0.0))
            true, rate = truth_bpm(clip), report.get("heart_rate_bpm")
            if true is not None and rate is not None:
                errors.append(abs(rate - true))
            print(f"{name} run {run + 1} {clip.parent.name}/{clip.name}: wall {wall:.2f} s, CPU {cpu:.2f} s, "
                  f"HR {rate} (truth {true})", file=sys.stderr, flush=True)
    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 2) if values else None

    return {"mode": name, "runs": len(walls), "wall_s": median(walls), "cpu_s": median(cpus),
            "realtime_x": median(factors), "stages_s": {stage: median(v) for stage, v in stages.items()},
            "hr_error_bpm": median(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="*", type=Path, help="clips to analyse (default: rendered synthetic ones)")
    parser.add_argument("--clips", type=int, default=1, help="number of synthetic clips when none are given")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per synthetic clip")
    parser.add_argument("--clip-dir", type=Path, help="where synthetic clips are rendered and reused "
                                                      "(default /tmp/peers-clips-NxDs-h264, as benchmarks/peers.py)")
    parser.add_argument("--runs", type=int, default=3, help="processes per clip and mode")
    parser.add_argument("--modes", default="vitals,full", help="comma-separated: vitals, full")
    parser.add_argument("--landmarks-every", type=int, default=None,
                        help="also time vitals only with FaceMesh on every N-th frame (opt-in mode)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per process")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    folder = args.clip_dir or Path(f"/tmp/peers-clips-{args.clips}x{args.duration:g}s-h264")
    clips = args.clip or make_clips(folder, args.clips, args.duration, "h264")
    modes = {"vitals": ["--sections", ""], "full": []}
    chosen = [(name, modes[name]) for name in args.modes.split(",") if name]
    if args.landmarks_every:
        chosen.append((f"vitals-every-{args.landmarks_every}",
                       ["--sections", "", "--landmarks-every", str(args.landmarks_every)]))
    load_before = os.getloadavg()
    rows = [run_mode(name, extra, clips, args.runs, args.timeout) for name, extra in chosen]
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({"clips": [str(c) for c in clips], "load_before": load_before, "load_after": load_after,
                          "results": rows}, indent=2))
        return
    print(f"{len(clips)} clip(s), {args.runs} run(s) each, {os.cpu_count()} cores; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'mode':<18}{'wall s':>8}{'CPU s':>8}{'x real':>8}" + "".join(f"{s:>9}" for s in STAGES) + f"{'HR err':>8}")
    def cell(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for row in rows:
        print(f"{row['mode']:<18}{cell(row['wall_s']):>8}{cell(row['cpu_s']):>8}{cell(row['realtime_x'], 1):>8}"
              + "".join(f"{cell(row['stages_s'][s]):>9}" for s in STAGES) + f"{cell(row['hr_error_bpm'], 1):>8}")


if __name__ == "__main__":
    main()
