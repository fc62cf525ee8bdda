"""Hostile and careless clients against a real ``smartmirror serve`` child process on 127.0.0.1.

Memory is the server process's resident set, sampled from /proc every 10 ms; every wait is bounded. Figures of the
code before these limits (same probes, ``benchmarks/api_hardening.py``): a 97 KB PNG bomb +580 MB, a 20-frame
4096x4096 batch +1006 MB, a 99 KB 7680x4320 clip 25 s and +1275 MB, 200 half-open sockets 0 closed after 15 s.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from api_process import serve_process
from image_bombs import png_bomb

ENV = {"SMARTMIRROR_SESSION_EXPIRY_S": "3", "SMARTMIRROR_SWEEP_INTERVAL_S": "1",
       "SMARTMIRROR_HEADER_TIMEOUT_S": "2", "SMARTMIRROR_KEEP_ALIVE_S": "2", "SMARTMIRROR_MAX_CONNECTIONS": "100"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.json()["error"]["code"] == code, response.text
    return response.json()["error"]["message"]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def server(tmp_root):
    with serve_process(tmp_root, env=ENV) as running:
        yield running


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


def make_clip(path: Path, size: str, seconds: float, fps: int, source: str = "color=gray") -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}:s={size}:r={fps}",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=300)
    return path


# -- 1, 2: images ----------------------------------------------------------------------------------------------


def test_png_bombs_are_refused_from_their_header_without_memory(server, client):
    bomb = {"image_data": b64(png_bomb(20_000, 20_000, bad_ancillary_crc=True))}   # ~1.2 MB body, 4e8 pixels
    with server.peak_rss() as rss:
        start = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:   # four at once (+2.0 GB before)
            answers = list(pool.map(lambda _: client.post("/analyze-image", json=bomb), range(4)))
        seconds = time.perf_counter() - start
    for response in answers:
        assert_error(response, 413, "image_too_large")
    assert seconds < 10 and rss["growth"] < 120, rss


def test_batches_decode_one_frame_at_a_time_and_bound_their_pixels(server, client):
    black = b64(cv2.imencode(".png", np.zeros((4096, 4096, 3), np.uint8))[1].tobytes())
    sid = client.post("/sessions").json()["session_id"]
    with server.peak_rss() as rss:  # 10 frames of 16.8 megapixels: within every limit
        response = client.post(f"/sessions/{sid}/frames:batch", json={"frames": [{"image_data": black}] * 10})
    assert response.status_code == 200, response.text
    assert response.json()["frames_processed"] == 10
    assert rss["growth"] < 300, rss           # all ten held at once: +500 MB of pixels alone
    with server.peak_rss() as rss:
        start = time.perf_counter()
        response = client.post(f"/sessions/{sid}/frames:batch", json={"frames": [{"image_data": black}] * 20})
    assert "megapixels" in assert_error(response, 413, "batch_too_large")
    assert time.perf_counter() - start < 5 and rss["growth"] < 100, rss


# -- 3: clips --------------------------------------------------------------------------------------------------


def test_an_8k_clip_is_refused_from_its_container_in_a_second(server, client, tmp_root):
    clip = make_clip(tmp_root / "8k.mp4", "7680x4320", 1, 5)
    with server.peak_rss() as rss:
        start = time.perf_counter()
        response = client.post("/analyze-video", files={"file": ("8k.mp4", clip.read_bytes(), "video/mp4")})
        seconds = time.perf_counter() - start
    assert "7680x4320" in assert_error(response, 413, "clip_too_large")
    assert seconds < 5 and rss["growth"] < 250, rss    # 25 s and +1275 MB before
    assert upload_files(tmp_root) == []


def upload_files(tmp_root: Path) -> list[Path]:
    """Files under the servers' upload root (TMPDIR is ``tmp_root``), lock files aside."""
    root = tmp_root / f"smartmirror-uploads-{os.getuid()}"
    return [p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock"]


# -- 4: uploads ------------------------------------------------------------------------------------------------


def _fds_into(pid: int, folder: Path) -> list[str]:
    links = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            links.append(target)
    return links


@pytest.mark.slow
def test_kill_9_during_an_analysis_leaves_nothing_after_the_next_start(tmp_path, synth_clip):
    clip_dir, _ = synth_clip(duration_s=12.0, fps=30.0, width=320, height=240, heart_rate_bpm=70.0, seed=3)
    data = (clip_dir / "vid.avi").read_bytes()
    assert len(data) > 1 << 20    # over Starlette's 1 MB spool: the old code also left an anonymous copy
    root = tmp_path / f"smartmirror-uploads-{os.getuid()}"
    with serve_process(tmp_path) as first:
        sent = threading.Thread(target=lambda: _post_quietly(first.url, data), daemon=True)
        sent.start()
        deadline = time.monotonic() + 60
        while not [p for p in root.rglob("vid.avi")] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)    # the analysis is running
        held = _fds_into(first.pid, tmp_path)
        uploads = upload_files(tmp_path)
        assert len(uploads) == 1 and uploads[0].name == "vid.avi"           # one file, the client's name
        assert oct(uploads[0].stat().st_mode & 0o777) == "0o600"
        assert not any("(deleted)" in t for t in held), held                  # no anonymous spooled copy
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    assert [p.name for p in root.rglob("vid.avi")] == ["vid.avi"]             # the crash left it behind
    with serve_process(tmp_path):
        assert list(root.rglob("vid.avi")) == []                              # swept at start-up


def _post_quietly(url: str, data: bytes) -> None:
    try:
        httpx.post(url + "/analyze-video", files={"file": ("vid.avi", data, "video/x-msvideo")}, timeout=120)
    except httpx.HTTPError:
        pass


# -- 5: cross-site use -----------------------------------------------------------------------------------------


def test_cross_site_requests_and_dns_rebinding_are_refused(server, client, tmp_root):
    evil = {"Origin": "http://evil.example"}
    assert_error(client.post("/sessions", headers={**evil, "Content-Type": "text/plain"}), 403,
                 "origin_not_allowed")
    assert_error(client.post("/analyze-video", headers=evil, files={"file": ("a.mp4", b"x" * 100, "video/mp4")}),
                 403, "origin_not_allowed")
    assert_error(client.get("/sessions", headers={"Host": "evil.example:8000"}), 403, "host_not_allowed")
    assert_error(client.post("/sessions", content=b"{}", headers={"Content-Type": "text/plain"}), 415,
                 "unsupported_media_type")
    assert_error(client.post("/analyze-video", data={"file": "x"}), 415, "unsupported_media_type")
    same = client.post("/sessions", json={}, headers={"Origin": server.url})   # the server's own page (/docs)
    assert same.status_code == 201, same.text
    assert client.get("/sessions", headers={"Host": "localhost"}).status_code == 200


# -- 6: slowloris ----------------------------------------------------------------------------------------------


def test_half_sent_requests_are_closed_and_headers_are_bounded(server, client):
    port = int(server.url.rsplit(":", 1)[1])
    socks = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(sock)
    busy = httpx.get(server.url + "/health", timeout=10)     # 100 connections open: the cap answers
    assert busy.status_code == 503, busy.text
    deadline = time.monotonic() + 8                          # header deadline 2 s here (10 s by default)
    closed: set[int] = set()
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            sock.setblocking(False)
            try:
                if sock.recv(1024) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    for sock in socks:
        sock.close()
    assert len(closed) == 100                               # 0 of 500 closed after 40 s before
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200   # and new clients get in again

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        reply = b""
        while b"}}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    # in one piece the headers parse, and the API refuses them; dribbled, h11 stops buffering at the limit
    assert reply.startswith(b"HTTP/1.1 431") and b'"code":"headers_too_large"' in reply, reply
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent, reply = 0, b""
        try:
            for _ in range(40):
                sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
                sent += 1
                time.sleep(0.005)
            sock.sendall(b"\r\n")
        except OSError:   # the server answered and closed while we were still sending
            pass
        try:
            reply = sock.recv(4096)
        except OSError:
            pass
    assert sent < 40, "the server kept reading 40 KB of headers"
    assert reply == b"" or (reply.startswith(b"HTTP/1.1 400") and b'"code": "bad_http_request"' in reply), reply

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:   # idle keep-alive: closed
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        start, data = time.monotonic(), b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and time.monotonic() - start < 8


# -- 9, 11: documented answers ---------------------------------------------------------------------------------


def test_documented_statuses_and_codes(client):
    tiny = b64(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    sid = client.post("/sessions").json()["session_id"]
    assert_error(client.post(f"/sessions/{sid}/frames:batch", json={"frames": [{"image_data": tiny}] * 201}),
                 413, "batch_too_large")
    assert_error(client.post("/sessions", content=b'{"pulse_method": "\xff"}',
                             headers={"Content-Type": "application/json"}), 400, "invalid_json")
    response = client.put("/sessions")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
    assert_error(client.post("/sessions", json={"pulse_method": ""}), 422, "unknown_pulse_method")
    schema = client.get("/openapi.json").json()
    create = schema["paths"]["/sessions"]["post"]
    assert {"400", "403", "415", "422", "503"} <= set(create["responses"])
    options = schema["components"]["schemas"]["SessionCreate"]["properties"]["pulse_method"]["anyOf"][0]
    assert "" not in options["enum"] and "pos" in options["enum"]


def test_an_expired_session_answers_410_before_its_image_is_looked_at(client):
    sid = client.post("/sessions").json()["session_id"]
    time.sleep(4.5)   # expiry 3 s here
    assert_error(client.post(f"/sessions/{sid}/frames", json={"image_data": b64(b"not an image")}), 410,
                 "session_expired")
    assert_error(client.post(f"/sessions/{sid}/frames:batch", json={"frames": [{"image_data": "AAAA"}]}), 410,
                 "session_expired")


@pytest.mark.slow
def test_a_clip_past_its_time_limit_stops_its_worker_and_frees_the_slot(synth_clip):
    from smartmirror.api.app import create_app
    from smartmirror.api.settings import ApiSettings
    from smartmirror.cli.serve import running_server

    clip_dir, _ = synth_clip(duration_s=12.0, fps=30.0, width=320, height=240, heart_rate_bpm=70.0, seed=3)
    data = (clip_dir / "vid.avi").read_bytes()
    app = create_app(ApiSettings(video_timeout_s=2.0))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        state = app.state.api
        start = time.perf_counter()
        response = client.post("/analyze-video", files={"file": ("vid.avi", data, "video/x-msvideo")})
        answered = time.perf_counter() - start
        assert_error(response, 504, "timeout")
        deadline = time.monotonic() + 5
        while state.videos_running and time.monotonic() < deadline:
            time.sleep(0.02)
        stopped = time.perf_counter() - start
        assert state.videos_running == 0 and stopped - answered < 2.0, (answered, stopped)  # ran on before
        assert list(state.uploads.folder.iterdir()) == []
        again = client.post("/analyze-video", files={"file": ("vid.avi", data[:5000], "video/x-msvideo")})
        assert again.json()["error"]["code"] != "analyses_busy"          # the slot is free for the next clip
