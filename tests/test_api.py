"""The REST API against a real uvicorn on 127.0.0.1 (ephemeral ports): heart rate, sessions, limits, errors."""

from __future__ import annotations

import base64
import importlib.util
import json
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest

from smartmirror.api.app import create_app
from smartmirror.api.settings import ApiSettings
from smartmirror.cli.serve import running_server
from smartmirror.frames import read_video_packets

LOCAL_DOCS = importlib.util.find_spec("swagger_ui") is not None  # Swagger UI's files served by the API itself

HEART_RATE_BPM = 81.0
# 15 frames/s, as a browser client that throttles its uploads would send (and half the test time of 30)
CLIP = {"duration_s": 15.0, "fps": 15.0, "width": 320, "height": 240, "heart_rate_bpm": HEART_RATE_BPM, "seed": 9}


@dataclass
class Server:
    url: str
    app: object

    @property
    def upload_dir(self):
        return self.app.state.api.uploads.folder

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0), **kwargs)


@pytest.fixture(scope="module")
def start_server():
    """Factory: ``start_server(**settings) -> Server`` (stopped at the end of the module)."""
    with ExitStack() as stack:

        def start(**overrides) -> Server:
            app = create_app(ApiSettings().with_overrides(**overrides))
            return Server(stack.enter_context(running_server(app)), app)

        yield start


@pytest.fixture(scope="module")
def server(start_server) -> Server:
    return start_server()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture
def session_id(client) -> str:
    response = client.post("/sessions")
    assert response.status_code == 201, response.text
    yield response.json()["session_id"]
    client.delete(f"/sessions/{response.json()['session_id']}")


def b64_jpeg(image_bgr: np.ndarray, quality: int = 95) -> str:
    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return base64.b64encode(encoded.tobytes()).decode()


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """The documented status, a JSON body of exactly {"error": {"code", "message"}}, and the code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def raw_request(url: str, head: bytes, body: bytes = b"", timeout_s: float = 20.0) -> tuple[int, dict, bytes]:
    """Send bytes on a fresh socket and parse one HTTP/1.1 response (status, lower-case headers, body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.sendall(head + body)
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response from ``sock`` (status, lower-case headers, body of its Content-Length), read without
    waiting for the connection to close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    header_bytes, rest = data.split(b"\r\n\r\n", 1)
    lines = header_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def two_faces(image_bgr: np.ndarray, face) -> np.ndarray:
    """Two copies of the astronaut's face side by side (padded crops, so FaceMesh's detector sees both)."""
    x, y, w, h = face.bbox
    crop = image_bgr[max(0, y - h // 2):y + h + h // 2, max(0, x - w // 2):x + w + w // 2]
    return np.ascontiguousarray(np.hstack([crop, crop]))


# -- heart rate end to end ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulse_clip(synth_clip):
    return synth_clip(**CLIP)


def test_clip_upload_reports_the_heart_rate(server, client, pulse_clip):
    clip_dir, truth = pulse_clip
    with open(clip_dir / "vid.avi", "rb") as video:
        response = client.post("/analyze-video", files={"file": ("vid.avi", video, "video/x-msvideo")})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=3.0)
    assert 0.0 <= report["heart_rate_confidence"] <= 1.0
    assert report["quality"]["face_detected_ratio"] > 0.9
    assert list(server.upload_dir.iterdir()) == []          # the temp file is gone


def test_both_clip_endpoints_answer_exactly_the_report_of_smartmirror_analyze(server, client, synth_clip):
    from smartmirror.report import analyze_video

    clip_dir, _ = synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, width=320, height=240)  # shared, >= 6 s
    expected = analyze_video(clip_dir / "vid.avi")
    for path, field in (("/analyze-video", "file"), ("/save_video", "video")):
        with open(clip_dir / "vid.avi", "rb") as video:
            response = client.post(path, files={field: ("vid.avi", video, "video/x-msvideo")})
        assert response.status_code == 200, response.text
        report = response.json()
        assert set(report) == set(expected)
        assert report["timings_s"].keys() == expected["timings_s"].keys()
        assert {k: v for k, v in report.items() if k != "timings_s"} == json.loads(json.dumps(
            {k: v for k, v in expected.items() if k != "timings_s"}))
    assert list(server.upload_dir.iterdir()) == []


def test_session_fed_frame_by_frame_measures_the_heart_rate(client, pulse_clip):
    clip_dir, truth = pulse_clip
    session = client.post("/create-session").json()["session_id"]
    answers = []
    for packet in read_video_packets(clip_dir / "vid.avi"):
        response = client.post("/analyze-image", json={"session_id": session, "image_data": b64_jpeg(packet.image),
                                                       "timestamp_s": packet.t})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert all(a["face_detected"] for a in answers)
    assert answers[0]["heart_rate_bpm"] is None                       # not from one frame
    last = answers[-1]
    assert last["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=3.0)
    assert 0.0 <= last["heart_rate_confidence"] <= 1.0
    status = client.get(f"/session/{session}/status").json()
    assert status["frames_received"] == len(answers) == len(truth.frame_times_s)
    assert status["heart_rate_bpm"] == last["heart_rate_bpm"]
    assert status["measured_fps"] == pytest.approx(15.0, rel=0.02)
    assert status["buffered_frames"] == 200                           # the bounded window, not the whole clip
    report = client.get(f"/sessions/{session}/report").json()
    assert report["heart_rate_bpm"] == pytest.approx(truth.heart_rate_bpm, abs=3.0)
    assert client.delete(f"/session/{session}").status_code == 200


def test_batches_keep_order_and_mark_frames_without_a_face(client, session_id, astronaut_bgr):
    from skimage import data

    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    frames = [{"image_data": b64_jpeg(img), "timestamp_s": i / 10}
              for i, img in enumerate([astronaut_bgr, astronaut_bgr, coffee, astronaut_bgr])]
    response = client.post(f"/sessions/{session_id}/frames:batch", json={"frames": frames})
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["frames_processed"] == 4 and batch["frames_with_face"] == 3
    assert [f["frame_index"] for f in batch["frames"]] == [0, 1, 2, 3]
    assert [f["timestamp_s"] for f in batch["frames"]] == [0.0, 0.1, 0.2, 0.3]
    assert batch["frames"][2]["error"]["code"] == "no_face" and batch["frames"][1]["error"] is None
    assert batch["frames"][0]["face"]["num_faces"] == 1
    # the compatibility alias continues the same session; an out-of-order batch is refused whole
    stale = client.post("/analyze-batch", json={"session_id": session_id, "frames": frames[:1]})
    assert_error(stale, 409, "timestamp_not_increasing")
    later = [{"image_data": frames[0]["image_data"], "timestamp_s": 1.0 + i / 10} for i in range(2)]
    response = client.post("/analyze-batch", json={"session_id": session_id, "frames": later})
    assert response.status_code == 200 and response.json()["frames"][-1]["frame_index"] == 5


def test_one_off_image_without_a_session(client, astronaut_bgr):
    response = client.post("/analyze-image", json={"image_data": b64_jpeg(astronaut_bgr)})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["face_detected"] and result["session_id"] is None
    assert result["heart_rate_bpm"] is None and result["vitals"] is None
    x, y, w, h = result["face"]["bbox"]
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200                # the astronaut's face


# -- sessions ----------------------------------------------------------------------------------------------------


def test_session_lifecycle_through_rest_and_alias_paths(client):
    created = client.post("/sessions", json={"fatigue_mode": "driver"})
    assert created.status_code == 201
    sid = created.json()["session_id"]
    alias = client.post("/create-session").json()["session_id"]
    listed = client.get("/sessions").json()
    ids = {s["session_id"] for s in listed["sessions"]}
    assert {sid, alias} <= ids and listed["count"] == len(ids) and listed["max_sessions"] == 100
    status = client.get(f"/sessions/{sid}").json()
    assert status["fatigue_mode"] == "driver" and status["frames_received"] == 0
    assert 299 < status["expires_in_s"] <= 300
    assert client.get(f"/session/{alias}/status").json()["session_id"] == alias
    assert client.delete(f"/sessions/{sid}").status_code == 200
    assert client.delete(f"/session/{alias}").status_code == 200
    assert_error(client.get(f"/sessions/{sid}"), 404, "session_not_found")
    assert_error(client.delete(f"/session/{alias}"), 404, "session_not_found")


def test_a_clip_report_only_server_method_is_not_used_for_live_sessions(start_server):
    """SMARTMIRROR_PULSE_METHOD=me-rlap (too slow for live frames) still lets sessions start, on the vitals'
    default method; a session that names a real-time method gets it, and naming me-rlap is refused."""
    server = start_server(pulse_method="me-rlap")
    with server.client() as client:
        default = client.post("/sessions").json()["session_id"]
        assert client.get(f"/sessions/{default}").json()["pulse_method"] is None
        named = client.post("/sessions", json={"pulse_method": "chrom"}).json()["session_id"]
        assert client.get(f"/sessions/{named}").json()["pulse_method"] == "chrom"
        assert_error(client.post("/sessions", json={"pulse_method": "me-rlap"}), 422, "unknown_pulse_method")


def test_health_status_metrics_and_docs(server, client, session_id, astronaut_bgr):
    client.post(f"/sessions/{session_id}/frames", json={"image_data": b64_jpeg(astronaut_bgr), "timestamp_s": 0})
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["uptime_s"] > 0
    status = client.get("/status").json()
    assert status["sessions_active"] >= 1 and status["frames_processed"] >= 1
    assert status["limits"]["max_upload_bytes"] == 50 * 2**20 and "api_key" not in status["limits"]
    assert "pos" in status["pulse_methods"] and status["process_rss_mb"] > 50
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'smartmirror_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="/sessions/{session_id}/frames"' in text               # templated, not one series per id
    assert 'smartmirror_analyzer_seconds_count{analyzer="face"}' in text
    assert "smartmirror_sessions_active" in text and "process_resident_memory_bytes" in text
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/sessions", "/sessions/{session_id}/frames", "/sessions/{session_id}/frames:batch",
                 "/create-session", "/session/{session_id}/status", "/analyze-image", "/analyze-batch",
                 "/analyze-video", "/save_video", "/health", "/status", "/metrics"):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    if LOCAL_DOCS:                                                          # swagger-ui-py installed:
        assert "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn." not in docs.text   # works offline
        assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
        assert_error(client.get("/docs-static/no-such-file.js"), 404, "not_found")


# -- bad inputs: each with its documented status and JSON error ---------------------------------------------------


@pytest.fixture(scope="module")
def truncated_mp4(tmp_path_factory, astronaut_bgr) -> bytes:
    from smartmirror.frames import FramePacket
    from smartmirror.synth import write_video

    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    frame = cv2.resize(astronaut_bgr, (160, 160))
    write_video(path, (FramePacket(t=i / 30, image=frame) for i in range(30)), fps=30, codec="mpeg4")
    data = path.read_bytes()
    return data[: len(data) // 2]


def post_frame(client, session_id, image_data):
    return client.post(f"/sessions/{session_id}/frames", json={"image_data": image_data, "timestamp_s": 1.0})


def upload(client, name, data, path="/analyze-video"):
    return client.post(path, files={"file": (name, data, "application/octet-stream")})


BAD_INPUTS = {
    "corrupt base64": (lambda c, s, a: post_frame(c, s, "/9j/4AAQ%%%not-base64%%%"), 400, "invalid_base64"),
    "text posted as an image": (
        lambda c, s, a: post_frame(c, s, base64.b64encode(b"Hello, I am a text file.").decode()),
        415, "not_an_image"),
    "text posted as a video": (lambda c, s, a: upload(c, "notes.mp4", b"Hello, I am a text file." * 40),
                               415, "not_a_video"),
    "truncated mp4": (lambda c, s, a: upload(c, "cut.mp4", a["truncated_mp4"]), 415, "not_a_video"),
    "zero-byte upload": (lambda c, s, a: upload(c, "empty.avi", b""), 400, "empty_file"),
    "zero-byte alias upload": (lambda c, s, a: upload(c, "empty.avi", b"", "/save_video"), 400, "empty_file"),
    "no file field": (lambda c, s, a: c.post("/analyze-video", files={"x": ("x.txt", b"1", "text/plain")}),
                      422, "missing_file"),
    "a form instead of multipart": (lambda c, s, a: c.post("/analyze-video", data={"x": "1"}), 415,
                                    "unsupported_media_type"),
    "no face": (lambda c, s, a: post_frame(c, s, b64_jpeg(a["coffee"])), 422, "no_face"),
    "image over 4096 px": (lambda c, s, a: post_frame(c, s, a["wide_png"]), 413, "image_too_large"),
    "unknown session": (lambda c, s, a: post_frame(c, "0" * 32, b64_jpeg(a["coffee"])), 404, "session_not_found"),
    "unknown session status": (lambda c, s, a: c.get("/session/nope/status"), 404, "session_not_found"),
    "invalid json": (lambda c, s, a: c.post("/analyze-image", content=b"{\"image_data\": ",
                                            headers={"content-type": "application/json"}), 400, "invalid_json"),
    "missing image": (lambda c, s, a: c.post("/analyze-image", json={"session_id": s}), 422, "invalid_request"),
    "negative timestamp": (lambda c, s, a: c.post(f"/sessions/{s}/frames",
                                                  json={"image_data": "AAAA", "timestamp_s": -1}),
                           422, "invalid_request"),
    "batch of 201 frames": (lambda c, s, a: c.post(f"/sessions/{s}/frames:batch",
                                                   json={"frames": [{"image_data": "AAAA"}] * 201}),
                            413, "batch_too_large"),
    "unknown pulse method": (lambda c, s, a: c.post("/sessions", json={"pulse_method": "telepathy"}),
                             422, "unknown_pulse_method"),
    "unknown endpoint": (lambda c, s, a: c.get("/no/such/thing"), 404, "not_found"),
    "wrong method": (lambda c, s, a: c.put("/sessions"), 405, "method_not_allowed"),
}


@pytest.fixture(scope="module")
def bad_assets(truncated_mp4, astronaut_bgr, astronaut_face):
    from skimage import data

    wide = cv2.imencode(".png", np.zeros((8, 4097, 3), np.uint8))[1].tobytes()
    return {"truncated_mp4": truncated_mp4, "coffee": cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR),
            "two_faces": two_faces(astronaut_bgr, astronaut_face), "wide_png": base64.b64encode(wide).decode()}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_its_documented_status_and_json_error(case, server, client, session_id, bad_assets):
    send, status, code = BAD_INPUTS[case]
    assert_error(send(client, session_id, bad_assets), status, code)
    assert list(server.upload_dir.iterdir()) == []


def test_two_faces_measure_the_largest_and_say_so(client, session_id, bad_assets):
    response = post_frame(client, session_id, b64_jpeg(bad_assets["two_faces"]))
    assert response.status_code == 200, response.text     # 422 multiple_faces before: one rule everywhere now
    body = response.json()
    assert body["face_detected"] and body["faces_seen"] == 2 and body["face"]["num_faces"] == 2
    assert body["warning"]["code"] == "several_faces"


def test_a_60_mb_body_is_refused_from_its_content_length_before_it_is_sent(server):
    size = 60 * 2**20
    head = (f"POST /analyze-video HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    started = time.perf_counter()
    status, headers, body = raw_request(server.url, head, b"--b\r\n")     # the other 59.99 MB never leave
    assert time.perf_counter() - started < 5
    assert status == 413 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # an ordinary client uploading a real 60 MB file gets the same answer
    with server.client() as client:
        started = time.perf_counter()
        response = client.post("/analyze-video", files={"file": ("big.mp4", b"\0" * size, "video/mp4")})
    assert_error(response, 413, "payload_too_large")
    assert time.perf_counter() - started < 10
    assert list(server.upload_dir.iterdir()) == []


@pytest.mark.parametrize("implementation", ["httptools", "h11"])
def test_a_refused_upload_is_answered_in_full_while_the_client_goes_on_sending(implementation, monkeypatch):
    """An early 413 closes lingering: the client may finish sending and then reads the whole answer, where an
    immediate close made the kernel reset the connection (and a reset can destroy the answer before it is read).
    A client that never stops sending is cut off after the lingering time."""
    from smartmirror.api.routes import protocol

    if implementation == "h11":
        monkeypatch.setattr(protocol, "HttpToolsProtocol", None)
    monkeypatch.setattr(protocol._LingeringClose, "linger_s", 1.5)
    head = (b"POST /analyze-video HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % (8 * 2**20))
    app = create_app(ApiSettings().with_overrides(max_upload_bytes=2**20))
    with running_server(app) as url:
        address = (urlsplit(url).hostname, urlsplit(url).port)
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(head + b"x" * 2**19)
            status, _, body = read_response(sock)
            assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large", body
            time.sleep(0.3)                                  # the server has answered: an immediate close is done
            for _ in range(15):
                sock.sendall(b"x" * 2**19)                   # the rest of the 8 MB: no reset
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1024) == b""                    # then a clean close

        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(head + b"x" * 2**16)
            assert read_response(sock)[0] == 413
            answered, cut_off = time.monotonic(), None
            while time.monotonic() - answered < 8:           # 2 MB/s for ever
                try:
                    sock.sendall(b"x" * 2**16)
                except OSError:
                    cut_off = time.monotonic() - answered
                    break
                time.sleep(0.03)
            assert cut_off is not None and 1.0 < cut_off < 5, cut_off


def test_a_body_without_length_is_cut_off_once_it_passes_the_limit(start_server):
    limited = start_server(max_upload_bytes=2 * 2**20)
    head = (b"POST /analyze-video HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.avi"\r\n\r\n' + b"x" * (3 * 2**20)
    body = b"%x\r\n%s\r\n" % (len(part), part)
    status, headers, text = raw_request(limited.url, head, body)
    assert status == 413 and json.loads(text)["error"]["code"] == "payload_too_large"
    assert list(limited.upload_dir.iterdir()) == []


def test_clips_longer_than_the_limit_are_refused(start_server, synth_clip):
    short_limit = start_server(max_clip_seconds=1.0)
    clip_dir, _ = synth_clip(duration_s=2.0, width=160, height=120)
    with short_limit.client() as c, open(clip_dir / "vid.avi", "rb") as video:
        assert_error(c.post("/analyze-video", files={"file": ("vid.avi", video)}), 413, "clip_too_long")
    assert list(short_limit.upload_dir.iterdir()) == []


def test_expired_sessions_answer_410_and_are_swept(start_server, astronaut_bgr):
    quick = start_server(session_expiry_s=0.6, sweep_interval_s=0.2)
    with quick.client() as c:
        sid = c.post("/sessions").json()["session_id"]
        assert c.post(f"/sessions/{sid}/frames", json={"image_data": b64_jpeg(astronaut_bgr)}).status_code == 200
        time.sleep(1.2)
        assert c.get("/status").json()["sessions_active"] == 0              # swept in the background
        error = assert_error(c.post(f"/sessions/{sid}/frames", json={"image_data": b64_jpeg(astronaut_bgr)}),
                             410, "session_expired")
        assert "POST /sessions" in error["message"]
        assert_error(c.get(f"/session/{sid}/status"), 410, "session_expired")


def test_session_limit_answers_503_with_retry_after(start_server):
    small = start_server(max_sessions=2, session_expiry_s=1.0, sweep_interval_s=0.2)
    with small.client() as c:
        assert [c.post("/sessions").status_code for _ in range(2)] == [201, 201]
        refused = c.post("/create-session")
        assert_error(refused, 503, "too_many_sessions")
        assert int(refused.headers["retry-after"]) == 1
        time.sleep(1.5)
        assert c.post("/sessions").status_code == 201                       # capacity comes back on expiry


def test_api_key_and_cors_allow_list(start_server):
    guarded = start_server(api_key="s3cret", cors_origins=("http://mirror.local",))
    with guarded.client() as c:
        assert_error(c.get("/status"), 401, "unauthorized")
        assert_error(c.post("/sessions", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert c.get("/status", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200                           # liveness and docs stay open
        assert c.get("/docs").status_code == 200
        assert not LOCAL_DOCS or c.get("/docs-static/swagger-ui.css").status_code == 200
        assert "ApiKey" in c.get("/openapi.json").json()["components"]["securitySchemes"]
        allowed = c.options("/sessions", headers={"Origin": "http://mirror.local",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "x-api-key"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://mirror.local"
        refused = c.options("/sessions", headers={"Origin": "http://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
        assert_error(refused, 400, "cors_refused")
        plain = c.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in plain.headers


def test_requests_past_the_time_limit_answer_504(start_server, astronaut_bgr):
    hurried = start_server(request_timeout_s=1.0)
    frames = [{"image_data": b64_jpeg(astronaut_bgr), "timestamp_s": i / 30} for i in range(150)]
    with hurried.client() as c:
        sid = c.post("/sessions").json()["session_id"]
        started = time.perf_counter()
        error = assert_error(c.post(f"/sessions/{sid}/frames:batch", json={"frames": frames}), 504, "timeout")
        assert time.perf_counter() - started < 3.0
        assert "send smaller batches" in error["message"] or "limit" in error["message"]


# -- the command ---------------------------------------------------------------------------------------------------


def test_serve_command_refuses_bad_settings_with_a_clear_message(monkeypatch, capsys):
    import typer

    from smartmirror.cli.serve import serve

    monkeypatch.setenv("SMARTMIRROR_MAX_SESSIONS", "many")
    with pytest.raises(typer.Exit) as caught:
        serve(port=0)
    assert caught.value.exit_code == 2
    assert "SMARTMIRROR_MAX_SESSIONS='many' is not valid" in capsys.readouterr().err


def test_serve_command_runs_the_api_on_loopback():
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SMARTMIRROR_API_KEY": "k", "GLOG_minloglevel": "2"}
    server = subprocess.Popen(
        [sys.executable, "-c", "from smartmirror.cli.app import main; main()", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "smartmirror serve did not answer within 120 s"
                time.sleep(0.3)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/status").status_code == 401          # the key from the env
        assert httpx.get(f"http://127.0.0.1:{port}/status", headers={"X-API-Key": "k"}).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0                                  # a clean shutdown
