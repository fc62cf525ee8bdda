"""SmartMirror against its peers (open-rppg, vitallens) on the same synthetic clips, one tool at a time.

Usage::

    python benchmarks/peers.py [--clips 8] [--duration 30] [--runs 3] [--tools smartmirror,...]

The peers live in throwaway venvs made from the package registry (never project dependencies), reused when
present: open-rppg 0.1.1 (its FacePhys.rlap model, ``rppg.Model.process_video``) in ``--openrppg-venv`` and
vitallens 0.6.2 (its local POS method: no API key, no network) in ``--vitallens-venv``. The clips are rendered by
``smartmirror synth --subjects N --codec h264`` (640x480, 30 fps, rates spread over 50-150 bpm, the truth in each
clip's truth.json) into ``--clip-dir``, copied without re-encoding into MP4 (vitallens misreads H.264 in AVI),
and reused. SmartMirror runs as ``smartmirror analyze CLIP --json
--sections ""`` (vitals only), with its default method and with ``--method facephys-rlap``.

Two ways, timed for wall and CPU (user + sys of all threads and of child processes such as ffmpeg):

- process: ``--runs`` rounds of one process per clip, start to exit (``resource.getrusage`` of the child), as a
  user who runs the command once per clip pays it: imports and model loading in every run;
- warm: one long-lived process per tool that loads the tool once and then runs every clip ``--runs`` times
  (``smartmirror.report.analyze_video`` for SmartMirror; the peers' own calls). "warm" is the median per clip
  after the first; "first load" is the first clip's extra cost: load time plus the first clip minus "warm".

Printed per tool: medians over clips and runs, the median and mean absolute heart-rate error against truth.json
(over both ways), and the ratios of process wall, process CPU and warm CPU to SmartMirror's default method (above
1: costlier than SmartMirror). Load averages are printed before and after: wall times mean little on a busy
machine, CPU time less so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = {  # tool -> pip requirements of its venv
    "openrppg": ["setuptools<81", "open-rppg==0.1.1"],
    # prpy's "numpy_min" extra (scipy, Pillow, psutil), which older pips drop: listed so any pip installs them
    "vitallens": ["vitallens==0.6.2", "scipy", "Pillow", "psutil"],
}
_CHILD = r"""
import json, resource, sys, time
def clock():  # wall; CPU of this process and of its finished children (vitallens decodes in ffmpeg processes)
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
w0, c0 = clock()
{load}
w1, c1 = clock()
print(json.dumps({{"load_wall": w1 - w0, "load_cpu": c1 - c0, "version": version}}), flush=True)
for path in sys.argv[1:]:
    w, c = clock()
    rate = estimate(path)
    w2, c2 = clock()
    print(json.dumps({{"wall": w2 - w, "cpu": c2 - c, "heart_rate_bpm": rate}}), flush=True)
"""
LOADS = {  # tool -> code defining version and estimate(path) -> heart rate, bpm (or None)
    "smartmirror": "from importlib.metadata import version as v\nfrom pathlib import Path\n"
                   "from smartmirror.report import analyze_video\nversion = v('smartmirror')\n"
                   "estimate = lambda p: analyze_video(Path(p), method={method!r}, sections=())['heart_rate_bpm']",
    "openrppg": "import rppg, importlib.metadata as md\nversion = md.version('open-rppg')\n"
                "model = rppg.Model('FacePhys.rlap')\nfresh = model.state\n"
                "def estimate(p):\n    model.state = fresh\n    return float(model.process_video(p)['hr'])",
    "vitallens": "import importlib.metadata as md\nfrom vitallens import VitalLens\nversion = md.version('vitallens')\n"
                 "lens = VitalLens(method='pos', export_to_json=False)\n"
                 "def estimate(p):\n    faces = lens(p)\n    return faces[0]['vitals']['heart_rate']['value'] if faces "
                 "else None",
}


def ensure_venv(path: Path, requirements: list[str]) -> Path | None:
    """The venv's python, creating the venv (``python3.11 -m venv`` + pip install) if missing; None on failure."""
    python = path / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {path} with {' '.join(requirements)} ...", file=sys.stderr)
    for command in (["python3.11", "-m", "venv", str(path)], [str(python), "-m", "pip", "install", "-q", "-U", "pip"],
                    [str(python), "-m", "pip", "install", "-q", *requirements]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  failed: {' '.join(command)}\n{done.stderr[-2000:]}", file=sys.stderr)
            return None
    return python


def make_clips(folder: Path, count: int, duration: float, codec: str) -> list[Path]:
    """``smartmirror synth --subjects count`` into ``folder`` unless it holds that many clips already."""
    found = lambda: sorted({p.parent for p in [*folder.glob("truth.json"), *folder.glob("subject*/truth.json")]})  # noqa: E731
    if len(found()) != count:  # one subject is rendered into the folder itself, several into subject*/
        print(f"rendering {count} clips of {duration:g} s into {folder} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "smartmirror.cli.app", "synth", str(folder), "--subjects", str(count),
                        "--duration", str(duration), "--codec", codec], check=True, env=_env(project=True),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clips = found()
    for clip in clips:  # the same stream in MP4 (vitallens's reader miscounts H.264 frames in AVI), AVI if it can't
        if not (clip / "vid.mp4").exists():
            done = subprocess.run(["ffmpeg", "-v", "quiet", "-y", "-i", str(clip / "vid.avi"), "-c", "copy",
                                   str(clip / "vid.mp4")])
            if done.returncode != 0:
                (clip / "vid.mp4").unlink(missing_ok=True)
    return [next(p for p in (c / "vid.mp4", c / "vid.avi") if p.exists()) for c in clips]


def _env(project: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
    if project:
        env["PYTHONPATH"] = str(ROOT)
    return env


def timed(command: list[str], env: dict[str, str], timeout: float) -> tuple[float, float, list[dict], str | None]:
    """Run one process: wall and CPU seconds (user + sys of the child), its JSON lines, an error or None."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd="/tmp")
        out, err, rc = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        out, err, rc = "", f"timed out after {timeout:g} s", -1
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return wall, cpu, lines, None if rc == 0 and lines else f"exit {rc}: {err.strip()[-600:]}"


def tool_commands(args: argparse.Namespace) -> dict[str, tuple[list[str], list[str], dict[str, str]]]:
    """Tool -> (one-clip process command, many-clip warm command, environment), for the tools asked and available."""
    analyze = [sys.executable, "-m", "smartmirror.cli.app", "analyze", "--json", "--sections", ""]
    ours = {"smartmirror": (None, analyze), "smartmirror-facephys": ("facephys-rlap", [*analyze, "--method",
                                                                                       "facephys-rlap"])}
    tools = {}
    for name in args.tools:
        if name in ours:
            method, process = ours[name]
            warm = [sys.executable, "-c", _CHILD.format(load=LOADS["smartmirror"].format(method=method))]
            tools[name] = (process, warm, _env(True))
            continue
        venv = args.openrppg_venv if name == "openrppg" else args.vitallens_venv
        python = ensure_venv(venv, PEERS[name])
        if python is None:
            print(f"{name}: venv {venv} could not be made, running without it", file=sys.stderr)
            continue
        child = [str(python), "-c", _CHILD.format(load=LOADS[name])]
        tools[name] = (child, child, _env(False))
    return tools


def run_tool(name: str, process: list[str], warm: list[str], env: dict[str, str], clips: list[Path], runs: int,
             timeout: float) -> dict:
    """``runs`` rounds of one process per clip, then one process over all clips ``runs`` times; the table row."""
    truth = {str(c): json.loads((c.parent / "truth.json").read_text())["heart_rate_bpm"] for c in clips}
    walls, cpus, errors, failed = [], [], [], 0

    def score(clip: Path, rate: float | None, wall: float, cpu: float, error: str | None, how: str) -> None:
        nonlocal failed
        error = error or (None if rate is not None else "no heart rate")
        failed += error is not None
        if error is None:
            errors.append(abs(rate - truth[str(clip)]))
        status = error or f"{rate:.1f} bpm (truth {truth[str(clip)]:.1f})"
        print(f"  {name} {how} {clip.parent.name}: wall {wall:.1f} s, CPU {cpu:.1f} s, {status}", file=sys.stderr)

    for _ in range(runs):
        for clip in clips:
            wall, cpu, lines, error = timed([*process, str(clip)], env, timeout)
            rate = lines[-1].get("heart_rate_bpm") if lines else None
            score(clip, rate, wall, cpu, error, "process")
            if error is None and rate is not None:
                walls.append(wall)
                cpus.append(cpu)
    order = clips * runs
    _, _, lines, error = timed([*warm, *map(str, order)], env, timeout * len(order))
    load, per_clip = (lines[0], lines[1:]) if lines and "load_wall" in lines[0] else ({}, [])
    for clip, line in zip(order, per_clip, strict=False):
        score(clip, line["heart_rate_bpm"], line["wall"], line["cpu"], None, "warm")
    failed += len(order) - len(per_clip)
    if error:
        print(f"  {name} warm: {error}", file=sys.stderr)
    steady = per_clip[1:] or per_clip
    warm_wall = statistics.median(x["wall"] for x in steady) if steady else float("nan")
    nan = float("nan")
    return {
        "wall": statistics.median(walls) if walls else nan, "cpu": statistics.median(cpus) if cpus else nan,
        "warm_wall": warm_wall, "warm_cpu": statistics.median(x["cpu"] for x in steady) if steady else nan,
        "first_load": load["load_wall"] + per_clip[0]["wall"] - warm_wall if per_clip else nan,
        "median_error": statistics.median(errors) if errors else nan,
        "mae": statistics.fmean(errors) if errors else nan,
        "failed": f"{failed}/{2 * len(order)}", "version": load.get("version", "?"),
    }


def print_table(rows: dict[str, dict]) -> None:
    base = rows.get("smartmirror")
    print("| tool | version | process wall s | process CPU s | warm wall s | warm CPU s | first load s "
          "| HR abs error median / mean, bpm | process wall / CPU / warm CPU vs smartmirror | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        ratio = "/".join(f"{r[k] / base[k]:.2f}" for k in ("wall", "cpu", "warm_cpu")) if base else "-"
        print(f"| {name} | {r['version']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['warm_wall']:.2f} "
              f"| {r['warm_cpu']:.2f} | {r['first_load']:.2f} | {r['median_error']:.2f} / {r['mae']:.2f} "
              f"| {ratio} | {r['failed']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="number of synthetic clips")
    parser.add_argument("--duration", type=float, default=30.0, help="clip length, seconds")
    parser.add_argument("--codec", default="h264", help="clip codec for smartmirror synth")
    parser.add_argument("--runs", type=int, default=3, help="rounds over all clips per tool")
    parser.add_argument("--tools", default="smartmirror,smartmirror-facephys,openrppg,vitallens",
                        help="comma-separated: smartmirror, smartmirror-facephys, openrppg, vitallens")
    parser.add_argument("--clip-dir", type=Path, help="where the clips are rendered and reused "
                                                      "(default /tmp/peers-clips-NxDs-CODEC)")
    parser.add_argument("--openrppg-venv", type=Path, default=Path("/tmp/phys-openrppg"))
    parser.add_argument("--vitallens-venv", type=Path, default=Path("/tmp/peers-vitallens"))
    parser.add_argument("--timeout", type=float, default=900.0, help="limit per run, seconds")
    args = parser.parse_args()
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - {"smartmirror", "smartmirror-facephys", *PEERS}
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    folder = args.clip_dir or Path(f"/tmp/peers-clips-{args.clips}x{args.duration:g}s-{args.codec}")
    clips = make_clips(folder, args.clips, args.duration, args.codec)
    tools = tool_commands(args)
    load_before = os.getloadavg()
    rows = {name: run_tool(name, *command, clips, args.runs, args.timeout) for name, command in tools.items()}
    load_after = os.getloadavg()
    load = " -> ".join("/".join(f"{x:.1f}" for x in avg) for avg in (load_before, load_after))
    print(f"{len(clips)} clips x {args.duration:g} s ({args.codec}, 640x480, 30 fps), {args.runs} run(s) each; "
          f"{os.cpu_count()} CPUs; load average (1/5/15 min) {load}")
    print_table(rows)
    missing = [t for t in args.tools if t not in tools]
    if missing:
        print(f"not run: {', '.join(missing)}")


if __name__ == "__main__":
    main()
