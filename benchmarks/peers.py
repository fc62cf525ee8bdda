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

Every run is its own process, timed for wall and CPU (user + sys of the child, ``resource.getrusage``). Each tool
first gets one cold run on the first clip (not in the medians): "first load" is its wall minus the median wall of
the warm runs on that clip. Then ``--runs`` rounds over all clips. Printed per tool: medians over clips and runs
of wall and CPU, the first load, the median and mean absolute heart-rate error against truth.json, and the ratios
of wall and CPU to SmartMirror's default method (above 1: slower than SmartMirror). Load averages are printed
before and after: wall times mean little on a busy machine, CPU time less so.
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
PEERS = {  # venv option -> (pip requirements, distribution whose version is reported)
    "openrppg": (["setuptools<81", "open-rppg==0.1.1"], "open-rppg"),
    # prpy's "numpy_min" extra (scipy, Pillow, psutil), which older pips drop: listed so any pip installs them
    "vitallens": (["vitallens==0.6.2", "scipy", "Pillow", "psutil"], "vitallens"),
}
_OPENRPPG = r"""
import json, sys, importlib.metadata as md
import rppg
result = rppg.Model("FacePhys.rlap").process_video(sys.argv[1])
print(json.dumps({"heart_rate_bpm": float(result["hr"]), "version": md.version("open-rppg")}))
"""
_VITALLENS = r"""
import json, sys, importlib.metadata as md
from vitallens import VitalLens
faces = VitalLens(method="pos", export_to_json=False)(sys.argv[1])
rate = faces[0]["vitals"]["heart_rate"]["value"] if faces else None
print(json.dumps({"heart_rate_bpm": rate, "version": md.version("vitallens")}))
"""


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
    if len(list(folder.glob("subject*/truth.json"))) != count:
        print(f"rendering {count} clips of {duration:g} s into {folder} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "smartmirror.cli.app", "synth", str(folder), "--subjects", str(count),
                        "--duration", str(duration), "--codec", codec], check=True, env=_env(project=True),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clips = sorted(p.parent for p in folder.glob("subject*/truth.json"))
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


def timed(command: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run one process; wall and CPU seconds (user + sys of the child), heart rate from its last JSON line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd="/tmp")
        out, err, rc = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, rc = "", f"timed out after {timeout:g} s: {exc.stderr!r}"[-2000:], -1
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result: dict = {"wall": wall, "cpu": cpu, "heart_rate_bpm": None, "error": None, "version": None}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if rc != 0 or not lines:
        result["error"] = f"exit {rc}: {err.strip()[-600:]}"
        return result
    report = json.loads(lines[-1])
    result["heart_rate_bpm"] = report.get("heart_rate_bpm")
    result["version"] = report.get("version")
    if result["heart_rate_bpm"] is None:
        result["error"] = "no heart rate"
    return result


def tool_commands(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """Tool name -> (command before the clip path, environment, version) for the tools asked for and available."""
    analyze = [sys.executable, "-m", "smartmirror.cli.app", "analyze", "--json", "--sections", ""]
    from importlib.metadata import version

    ours = version("smartmirror") if _installed("smartmirror") else "worktree"
    tools = {"smartmirror": (analyze, _env(True), ours),
             "smartmirror-facephys": ([*analyze, "--method", "facephys-rlap"], _env(True), ours)}
    for name, code, venv in (("openrppg", _OPENRPPG, args.openrppg_venv), ("vitallens", _VITALLENS,
                                                                            args.vitallens_venv)):
        if name not in args.tools:
            continue
        python = ensure_venv(venv, PEERS[name][0])
        if python is None:
            print(f"{name}: venv {venv} could not be made, running without it", file=sys.stderr)
            continue
        tools[name] = ([str(python), "-c", code], _env(False), _peer_version(python, PEERS[name][1]))
    return {name: tools[name] for name in args.tools if name in tools}


def _installed(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
        return True
    except PackageNotFoundError:
        return False


def _peer_version(python: Path, dist: str) -> str:
    done = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"


def run_tool(name: str, command: list[str], env: dict[str, str], clips: list[Path], runs: int,
             timeout: float) -> dict:
    """One cold run on the first clip, then ``runs`` rounds over all clips; the figures of the table row."""
    def one(clip: Path) -> dict:
        result = timed([*command, str(clip)], env, timeout)
        truth = json.loads((clip.parent / "truth.json").read_text())["heart_rate_bpm"]
        if result["heart_rate_bpm"] is not None:
            result["abs_error"] = abs(result["heart_rate_bpm"] - truth)
        status = result["error"] or f"{result['heart_rate_bpm']:.1f} bpm (truth {truth:.1f})"
        print(f"  {name} {clip.parent.name}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, {status}",
              file=sys.stderr)
        return result

    cold = one(clips[0])
    warm = [(clip, one(clip)) for _ in range(runs) for clip in clips]
    ok = [r for _, r in warm if r["error"] is None]
    first_clip = [r["wall"] for clip, r in warm if clip == clips[0]]
    errors = [r["abs_error"] for r in ok]
    return {
        "wall": statistics.median(r["wall"] for r in ok) if ok else float("nan"),
        "cpu": statistics.median(r["cpu"] for r in ok) if ok else float("nan"),
        "first_load": cold["wall"] - statistics.median(first_clip) if first_clip else float("nan"),
        "median_error": statistics.median(errors) if errors else float("nan"),
        "mae": statistics.fmean(errors) if errors else float("nan"),
        "failed": len(warm) - len(ok) + (cold["error"] is not None),
        "runs": len(warm) + 1,
    }


def print_table(rows: dict[str, dict], versions: dict[str, str]) -> None:
    base = rows.get("smartmirror")
    print("| tool | version | wall s | CPU s | first load s | HR abs error median / mean, bpm | wall / SM | CPU / SM "
          "| failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        ratio = (f"{row['wall'] / base['wall']:.2f} | {row['cpu'] / base['cpu']:.2f}" if base else "- | -")
        print(f"| {name} | {versions[name]} | {row['wall']:.2f} | {row['cpu']:.2f} | {row['first_load']:.2f} "
              f"| {row['median_error']:.2f} / {row['mae']:.2f} | {ratio} | {row['failed']}/{row['runs']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="number of synthetic clips")
    parser.add_argument("--duration", type=float, default=30.0, help="clip length, seconds")
    parser.add_argument("--codec", default="h264", help="clip codec for smartmirror synth")
    parser.add_argument("--runs", type=int, default=3, help="rounds over all clips per tool (after one cold run)")
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
    rows, versions = {}, {}
    for name, (command, env, version) in tools.items():
        rows[name], versions[name] = run_tool(name, command, env, clips, args.runs, args.timeout), version
    load_after = os.getloadavg()
    print(f"{len(clips)} clips x {args.duration:g} s ({args.codec}, 640x480, 30 fps), {args.runs} run(s) each "
          f"after one cold run; {os.cpu_count()} CPUs; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after {'/'.join(f'{x:.1f}' for x in load_after)}")
    print_table(rows, versions)
    missing = [t for t in args.tools if t not in tools]
    if missing:
        print(f"not run: {', '.join(missing)}")


if __name__ == "__main__":
    main()
