"""FacePhys (facephys-rlap) inference cost: per 30 s clip and per streamed frame, quiet and beside busy processes.

Usage::

    python benchmarks/facephys_speed.py [--seconds 30] [--runs 3] [--busy 2] [--backends onnx,torch,torch2]

Backends: ``onnx`` (weights/rppg_facephys_rlap.onnx in onnxruntime, one thread, no spinning: the default path),
``torch`` (the PyTorch port as the methods run it, one thread) and ``torch2`` (the port on torch's default two
OpenMP threads, as before; spin-waits and collapses under contention, so it gets a time limit per run).
Input: face-like 36x36 crops with a 0.5 % pulse (the network's cost does not depend on the content). With
``--busy N`` each measurement is repeated with N ``while True: pass`` processes beside it. Prints medians of
``--runs`` runs: wall and CPU seconds per clip, and streaming milliseconds per frame (one frame per call with the
state carried, ONNX only).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_RUN_ONE = r"""
import sys, time, numpy as np
backend, seconds = sys.argv[1], float(sys.argv[2])
n = int(seconds * 30)
rng = np.random.default_rng(0)
t = np.arange(n)[:, None, None, None] / 30.0
base = np.array([170.0, 120.0, 100.0]) * (1 + 0.005 * np.sin(2 * np.pi * 1.2 * t))
frames = np.clip(base + 4 * rng.standard_normal((n, 36, 36, 3)), 0, 255).astype(np.uint8)
from smartmirror.vitals import neural
if backend == "torch2":
    import torch
    torch.set_num_threads(2)
    neural._single_torch_thread = __import__("contextlib").nullcontext  # the old behaviour
    net = neural.load_pretrained("facephys-rlap")
    run = lambda: neural.run_network(net, frames, chunk_frames=64, pad_last=False)
else:
    run = lambda: neural.pretrained_pulse("facephys-rlap", frames, sampling_rate=30.0, backend=backend)
warm = "onnx" if backend == "onnx" else "torch"
neural.pretrained_pulse("facephys-rlap", frames[:64], sampling_rate=30.0, backend=warm)  # first load apart
c, w = time.process_time(), time.perf_counter()
run()
wall, cpu = time.perf_counter() - w, time.process_time() - c
stream = float("nan")
if backend == "onnx":
    net = neural.load_onnx("facephys-rlap", streaming=True)
    state, k = None, min(n, 300)
    c = time.process_time()
    for f in frames[:k]:
        _, state = net.step(f[None], state)
    stream = 1000 * (time.process_time() - c) / k
print(wall, cpu, stream)
"""


def measure(backend: str, seconds: float, timeout_s: float) -> tuple[float, float, float]:
    """(wall s, CPU s, streaming CPU ms/frame) of one run in a fresh process; inf on timeout."""
    try:
        out = subprocess.run([sys.executable, "-c", _RUN_ONE, backend, str(seconds)], capture_output=True,
                             text=True, timeout=timeout_s, check=True, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        return float("inf"), float("inf"), float("nan")
    wall, cpu, stream = (float(v) for v in out.stdout.split()[-3:])
    return wall, cpu, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the busy runs (0: quiet only)")
    parser.add_argument("--backends", default="onnx,torch,torch2")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run before it counts as inf")
    args = parser.parse_args()
    conditions = ["quiet"] + (["busy"] if args.busy else [])
    print(f"{args.seconds:.0f} s clip at 30 fps, median of {args.runs}; busy = {args.busy} spinning processes")
    print(f"{'backend':8} {'condition':9} {'wall s':>8} {'CPU s':>8} {'stream ms/frame':>16}")
    for backend in args.backends.split(","):
        for condition in conditions:
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        for _ in range(args.busy if condition == "busy" else 0)]
            try:
                time.sleep(0.5 if spinners else 0)
                runs = [measure(backend, args.seconds, args.timeout) for _ in range(args.runs)]
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            wall, cpu, stream = (statistics.median(v) for v in zip(*runs, strict=True))
            print(f"{backend:8} {condition:9} {wall:8.2f} {cpu:8.2f} {stream:16.2f}", flush=True)
    print(f"(load average now {np.round(__import__('os').getloadavg(), 1).tolist()})")


if __name__ == "__main__":
    main()
