"""Benchmark the REST API: frames/s and per-frame latency (p50, p95) with 1 and 20 concurrent sessions.

    .venv/bin/python benchmarks/api.py [--sessions 1 20] [--frames 40] [--repeats 3] [--width 320 --height 240]
                                       [--url http://127.0.0.1:8000] [--json]

Without ``--url`` the server runs in a child process (``uvicorn --factory smartmirror.api.app:create_app`` on a free
loopback port), so the load generator does not share its interpreter. Each session posts ``--frames`` JPEG frames
(quality 95, base64, a synthetic pulse clip of the astronaut) one request at a time with their capture
timestamps, as a webcam client would; the sessions run concurrently. Figures are medians over ``--repeats`` runs;
every run uses fresh sessions (the first frame of a session builds its MediaPipe graph, which is counted).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe loads (the synthetic clip uses it)

import cv2  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402


def synthetic_frames(count: int, width: int, height: int) -> list[str]:
    from smartmirror.synth import SynthConfig, generate_frames

    packets, _ = generate_frames(SynthConfig(duration_s=count / 30, width=width, height=height, seed=1))
    return [base64.b64encode(cv2.imencode(".jpg", p.image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()).decode()
            for p in packets]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GLOG_minloglevel": "2", "SMARTMIRROR_MAX_SESSIONS": "100"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "smartmirror.api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the API server exited at start-up")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the API server did not start in 120 s")


def stream(url: str, frames: list[str], latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        created = client.post("/sessions")
        if created.status_code != 201:
            errors.append(created.text)
            return
        session_id = created.json()["session_id"]
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            response = client.post(f"/sessions/{session_id}/frames", json={"image_data": frame, "timestamp_s": i / 30})
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
        client.delete(f"/sessions/{session_id}")


def run(url: str, sessions: int, frames: list[str]) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=stream, args=(url, frames, latencies, errors)) for _ in range(sessions)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return {"frames_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p95_ms": float(np.percentile(latencies, 95) * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--frames", type=int, default=40, help="frames per session")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    frames = synthetic_frames(args.frames, args.width, args.height)
    process, url = (None, args.url) if args.url else start_server()
    try:
        run(url, 1, frames[:5])  # warm-up (first-request costs of the server process)
        results = {}
        for sessions in args.sessions:
            runs = [run(url, sessions, frames) for _ in range(args.repeats)]
            results[sessions] = {key: round(statistics.median(r[key] for r in runs), 1) for key in runs[0]}
        rss = httpx.get(f"{url}/status", timeout=30).json().get("process_rss_mb")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)

    out = {"frame_size": f"{args.width}x{args.height}", "frames_per_session": args.frames,
           "repeats": args.repeats, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
           "server_rss_mb_after": rss, "results": {str(k): v for k, v in results.items()}}
    if args.json:
        print(json.dumps(out))
        return
    print(f"REST API, {args.width}x{args.height} JPEG frames, {args.frames} frames per session, "
          f"median of {args.repeats} runs, {os.cpu_count()} CPUs")
    print(f"{'sessions':>8}  {'frames/s':>9}  {'p50 ms':>8}  {'p95 ms':>8}")
    for sessions, r in results.items():
        print(f"{sessions:>8}  {r['frames_per_s']:>9.1f}  {r['p50_ms']:>8.0f}  {r['p95_ms']:>8.0f}")
    print(f"server RSS after the runs: {rss:.0f} MB")


if __name__ == "__main__":
    main()
