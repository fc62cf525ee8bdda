"""Hostile and careless clients against a real ``smartmirror serve`` child process on 127.0.0.1.

Prints one JSON line per probe: status, error code, seconds and the server's resident-memory growth (MB, sampled
from /proc every 10 ms). Usage::

    python benchmarks/api_hardening.py [--pythonpath DIR] [--only png_bomb,batch,...]

``--pythonpath`` runs the server from another checkout (e.g. a copy of main, for before/after figures).
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from api_process import serve_process  # noqa: E402
from image_bombs import png_bomb  # noqa: E402


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _err(response) -> str | None:
    try:
        return response.json().get("error", {}).get("code")
    except ValueError:
        return response.text[:60]


def probe_png_bomb(server) -> dict:
    body = {"image_data": _b64(png_bomb(10_000, 10_000, bad_ancillary_crc=True))}
    with server.client() as client, server.peak_rss() as rss:
        start = time.perf_counter()
        response = client.post("/analyze-image", json=body)
        seconds = time.perf_counter() - start
    return {"status": response.status_code, "code": _err(response), "s": round(seconds, 2),
            "rss_growth_mb": round(rss["growth"], 1)}


def probe_batch(server, frames: int = 20) -> dict:
    ok, png = cv2.imencode(".png", np.zeros((4096, 4096, 3), np.uint8))
    image = _b64(png.tobytes())
    with server.client() as client:
        sid = client.post("/sessions").json()["session_id"]
        with server.peak_rss() as rss:
            start = time.perf_counter()
            response = client.post(f"/sessions/{sid}/frames:batch",
                                   json={"frames": [{"image_data": image} for _ in range(frames)]})
            seconds = time.perf_counter() - start
    return {"frames": frames, "status": response.status_code, "code": _err(response), "s": round(seconds, 2),
            "rss_growth_mb": round(rss["growth"], 1)}


def make_clip(path: Path, width: int, height: int, seconds: float, fps: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=gray:s={width}x{height}:r={fps}",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=300)
    return path


def probe_big_clip(server, tmp: Path) -> dict:
    clip = make_clip(tmp / "8k.mp4", 7680, 4320, 2, 10)
    with server.client() as client, server.peak_rss() as rss:
        start = time.perf_counter()
        response = client.post("/analyze-video", files={"file": ("8k.mp4", clip.read_bytes(), "video/mp4")})
        seconds = time.perf_counter() - start
    return {"clip": "7680x4320 2 s 10 fps", "bytes": clip.stat().st_size, "status": response.status_code,
            "code": _err(response), "s": round(seconds, 2), "rss_growth_mb": round(rss["growth"], 1),
            "rss_after_growth_mb": round(rss["after"] - rss["before"], 1)}


def probe_cross_site(server) -> dict:
    with server.client() as client:
        simple = client.post("/sessions", headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
        rebound = client.get("/sessions", headers={"Host": "evil.example:8000"})
    return {"cross_site_text_plain_post": simple.status_code, "code": _err(simple),
            "rebound_host_get": rebound.status_code}


def probe_slowloris(server, count: int = 200, wait_s: float = 15.0) -> dict:
    port = int(server.url.rsplit(":", 1)[1])
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(sock)
    time.sleep(wait_s)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
            closed += data == b"" or data.startswith(b"HTTP/1.1 4")
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    big = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(big)
            reply = sock.recv(200)
        except OSError as exc:
            reply = repr(exc).encode()
    return {"half_open": count, "closed_after_s": wait_s, "closed": closed,
            "200kb_header_reply": reply.split(b"\r\n", 1)[0].decode(errors="replace")}


def probe_docs_mismatch(server) -> dict:
    ok, jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    with server.client() as client:
        sid = client.post("/sessions").json()["session_id"]
        batch = client.post(f"/sessions/{sid}/frames:batch",
                            json={"frames": [{"image_data": _b64(jpg.tobytes())}] * 201})
        utf8 = client.post("/sessions", content=b'{"pulse_method": "\xff"}',
                           headers={"Content-Type": "application/json"})
        method = client.put("/sessions")
        empty = client.post("/sessions", json={"pulse_method": ""})
    return {"batch_201": [batch.status_code, _err(batch)], "invalid_utf8": [utf8.status_code, _err(utf8)],
            "405_allow": method.headers.get("allow"), "pulse_method_empty": [empty.status_code, _err(empty)]}


def probe_expired_then_bad_image(server) -> dict:
    with server.client() as client:
        sid = client.post("/sessions").json()["session_id"]
        time.sleep(3.5)
        response = client.post(f"/sessions/{sid}/frames", json={"image_data": _b64(b"not an image at all")})
    return {"status": response.status_code, "code": _err(response)}


def probe_batch_within_limits(server) -> dict:
    return probe_batch(server, frames=10)


PROBES = {"png_bomb": probe_png_bomb, "batch": probe_batch, "batch_10": probe_batch_within_limits,
          "big_clip": probe_big_clip,
          "cross_site": probe_cross_site, "slowloris": probe_slowloris, "docs": probe_docs_mismatch,
          "expired": probe_expired_then_bad_image}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythonpath", default=None)
    parser.add_argument("--only", default=",".join(PROBES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="api-hardening-") as tmp:
        env = {"SMARTMIRROR_SESSION_EXPIRY_S": "2", "SMARTMIRROR_SWEEP_INTERVAL_S": "1"}
        with serve_process(Path(tmp), env=env, pythonpath=args.pythonpath) as server:
            for name in args.only.split(","):
                probe = PROBES[name]
                result = probe(server, Path(tmp)) if name == "big_clip" else probe(server)
                print(json.dumps({"probe": name, **result}), flush=True)


if __name__ == "__main__":
    main()
