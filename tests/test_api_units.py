"""The API's parts without a server: settings from the environment, image/video decoding, the session store."""

from __future__ import annotations

import base64
import math

import cv2
import numpy as np
import pytest

from smartmirror.analyzer import json_value
from smartmirror.api.routes.errors import ApiError
from smartmirror.api.routes.media import decode_base64, decode_image, decode_image_base64, probe_video
from smartmirror.api.session_store import SessionStore
from smartmirror.api.sessions import (
    FrameOrderError,
    SessionExpired,
    SessionNotFound,
    TooManySessions,
)
from smartmirror.api.settings import ApiSettings
from smartmirror.frames import VideoError
from smartmirror.registry import specs_for

# -- settings ----------------------------------------------------------------------------------------------------


def test_settings_defaults_match_the_documented_limits():
    settings = ApiSettings.from_env({})
    assert settings.api_key is None and settings.cors_origins == ()
    assert settings.max_sessions == 100
    assert settings.session_expiry_s == 300
    assert (settings.buffer_frames, settings.buffer_seconds) == (200, 20)
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.max_clip_seconds == 120
    assert settings.max_image_side_px == 4096


def test_settings_read_from_environment_variables():
    env = {
        "SMARTMIRROR_API_KEY": "s3cret",
        "SMARTMIRROR_CORS_ORIGINS": "http://localhost:3000, https://mirror.example/",
        "SMARTMIRROR_MAX_SESSIONS": "7",
        "SMARTMIRROR_SESSION_EXPIRY_S": "2.5",
        "SMARTMIRROR_MAX_UPLOAD_MB": "1.5",
        "SMARTMIRROR_PULSE_METHOD": "chrom",
    }
    settings = ApiSettings.from_env(env)
    assert settings.api_key == "s3cret"
    assert settings.cors_origins == ("http://localhost:3000", "https://mirror.example")
    assert settings.max_sessions == 7
    assert settings.session_expiry_s == 2.5
    assert settings.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert settings.pulse_method == "chrom"
    assert "api_key" not in settings.public_limits()


@pytest.mark.parametrize(
    ("name", "value"),
    [("SMARTMIRROR_MAX_SESSIONS", "many"), ("SMARTMIRROR_MAX_SESSIONS", "0"),
     ("SMARTMIRROR_SESSION_EXPIRY_S", "-1"), ("SMARTMIRROR_CORS_ORIGINS", "mirror.example")],
)
def test_settings_reject_bad_values_naming_what_is_wrong(name, value):
    with pytest.raises(ValueError, match="must|SMARTMIRROR_"):
        ApiSettings.from_env({name: value})


# -- decoding ----------------------------------------------------------------------------------------------------


def test_base64_accepts_data_urls_urlsafe_and_missing_padding():
    raw = bytes(range(256)) * 3 + b"\xfb\xff"
    standard = base64.b64encode(raw).decode()
    assert decode_base64(standard) == raw
    assert decode_base64("data:image/jpeg;base64," + standard) == raw
    assert decode_base64(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert decode_base64(standard[:40] + "\n" + standard[40:]) == raw


@pytest.mark.parametrize("text", ["not base64!!", "data:image/png,abc", "===="])
def test_corrupt_base64_is_a_400(text):
    with pytest.raises(ApiError) as caught:
        decode_base64(text)
    assert caught.value.status_code == 400
    assert caught.value.code in {"invalid_base64", "empty_image"}


def test_text_is_not_an_image_and_oversized_images_are_refused_before_decoding():
    with pytest.raises(ApiError) as caught:
        decode_image(b"just some text, not pixels", max_side_px=4096)
    assert (caught.value.status_code, caught.value.code) == (415, "not_an_image")
    wide = cv2.imencode(".png", np.zeros((4, 5000, 3), np.uint8))[1].tobytes()
    with pytest.raises(ApiError) as caught:
        decode_image(wide, max_side_px=4096)
    assert (caught.value.status_code, caught.value.code) == (413, "image_too_large")
    assert "5000x4" in caught.value.message


def test_decoded_image_is_bgr_with_the_original_colours(astronaut_bgr):
    encoded = base64.b64encode(cv2.imencode(".png", astronaut_bgr)[1]).decode()
    image = decode_image_base64(encoded, max_side_px=4096)
    assert image.shape == astronaut_bgr.shape and image.dtype == np.uint8
    assert np.array_equal(image, astronaut_bgr)


def test_video_probe_measures_duration_and_refuses_long_or_broken_files(tmp_path, synth_clip):
    clip_dir, truth = synth_clip(duration_s=2.0, width=160, height=120)
    seconds = probe_video(clip_dir / "vid.avi", max_seconds=120)
    assert seconds == pytest.approx(truth.frame_times_s[-1] + 1 / 30, abs=0.05)
    with pytest.raises(VideoError) as caught:
        probe_video(clip_dir / "vid.avi", max_seconds=1.0)
    assert caught.value.code == "clip_too_long"
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file with an .mp4 name")
    with pytest.raises(VideoError) as caught:
        probe_video(text, max_seconds=120)
    assert caught.value.code == "not_a_video"


def test_json_value_turns_numpy_and_non_finite_values_into_plain_json():
    state = {"hr": np.float32(71.5), "n": np.int64(3), "ok": np.bool_(True), "wave": np.arange(3.0),
             "bad": math.nan, "nested": {"inf": np.float64("inf")}, 4: (1, 2)}
    assert json_value(state) == {"hr": 71.5, "n": 3, "ok": True, "wave": [0.0, 1.0, 2.0], "bad": None,
                               "nested": {"inf": None}, "4": [1, 2]}


# -- session store -----------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def no_analyzers(pulse_method, fatigue_mode):
    return {}


def make_store(clock: FakeClock, **overrides) -> SessionStore:
    settings = ApiSettings().with_overrides(**{"max_sessions": 3, "session_expiry_s": 60.0, **overrides})
    return SessionStore(settings, analyzer_factory=no_analyzers, clock=clock)


def test_store_refuses_sessions_past_the_limit_and_says_when_to_retry():
    clock = FakeClock()
    store = make_store(clock)
    first = store.create()
    clock.now += 20
    store.create()
    store.create()
    with pytest.raises(TooManySessions) as caught:
        store.create()
    assert caught.value.retry_after_s == pytest.approx(40.0)
    store.delete(first.session_id)
    assert first.closed and first.close_reason == "deleted"
    store.create()
    assert len(store) == 3


def test_idle_sessions_expire_lazily_and_by_sweep_but_not_while_in_use():
    clock = FakeClock()
    store = make_store(clock)
    lazy, swept, busy = store.create(), store.create(), store.create()
    with pytest.raises(SessionNotFound):
        store.get("no-such-session")
    with store.use(busy.session_id):                     # a request holds it through the idle time
        clock.now += 61
        with pytest.raises(SessionExpired):
            store.get(lazy.session_id)                   # expired on access
        assert store.sweep() == 1                        # only the idle one; the busy one is held
    assert swept.closed and swept.close_reason == "expired"
    with pytest.raises(SessionExpired):
        store.get(swept.session_id)                      # still known as expired, not "not found"
    assert store.get(busy.session_id) is busy
    assert store.expired_total == 2 and len(store) == 1
    clock.now += 61
    assert [s.session_id for s in store.sessions()] == []


def test_session_keeps_a_bounded_window_and_refuses_frames_out_of_order(astronaut_bgr):
    clock = FakeClock()
    store = make_store(clock, buffer_frames=4, buffer_seconds=0.1)
    session = store.create()
    small = cv2.resize(astronaut_bgr, (256, 256))
    with store.use(session.session_id) as held:
        for i in range(6):
            outcome = held.process(small, i / 30)
            assert outcome.face is not None and outcome.error_code is None
        with pytest.raises(FrameOrderError) as caught:
            held.process(small, 0.05)
        assert caught.value.code == "timestamp_not_increasing"
        with pytest.raises(FrameOrderError) as caught:
            held.process(small, None)
        assert caught.value.code == "clock_mismatch"
    info = session.info(60.0)
    assert info["frames_received"] == 6 and info["frames_with_face"] == 6
    assert info["buffered_frames"] == 4                           # bounded by count ...
    assert info["buffered_seconds"] <= 0.1                        # ... and by source-clock span
    assert info["measured_fps"] == pytest.approx(30.0, rel=1e-3)
    assert info["clock"] == "client"


def test_frames_without_a_face_are_gaps_and_several_faces_measure_the_largest(astronaut_bgr, astronaut_face):
    from skimage import data

    clock = FakeClock()
    store = make_store(clock)
    session = store.create()
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    with store.use(session.session_id) as held:
        outcome = held.process(coffee, 0.0)
        assert outcome.error_code == "no_face" and outcome.face is None
        outcome = held.process(two_faces(astronaut_bgr, astronaut_face), 0.1)
        assert outcome.error_code is None and outcome.num_faces == 2 and outcome.face is not None
        assert outcome.warning["code"] == "several_faces" and "2 faces" in outcome.warning["message"]
    assert session.frames_received == 2 and session.frames_with_face == 1


def two_faces(image_bgr: np.ndarray, face) -> np.ndarray:
    """Two copies of the face, side by side (padded crops, so FaceMesh's detector sees both)."""
    x, y, w, h = face.bbox
    pad_x, pad_y = w // 2, h // 2
    crop = image_bgr[max(0, y - pad_y):y + h + pad_y, max(0, x - pad_x):x + w + pad_x]
    return np.ascontiguousarray(np.hstack([crop, crop]))


# -- the request guard on a real uvicorn, around a deliberately slow endpoint ------------------------------------


def test_time_limit_answers_504_json_while_the_slow_worker_finishes_on_its_own():
    import threading
    import time

    import httpx
    from fastapi import FastAPI

    from smartmirror.api.routes.errors import install_error_handlers
    from smartmirror.api.routes.metrics import ApiMetrics
    from smartmirror.api.routes.middleware import RequestGuard
    from smartmirror.cli.serve import running_server

    finished = threading.Event()
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestGuard, settings=ApiSettings(request_timeout_s=0.5), metrics=ApiMetrics())

    @app.get("/slow")
    def slow() -> dict:
        time.sleep(1.5)
        finished.set()
        return {"late": True}

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("an unexpected bug")

    with running_server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        started = time.perf_counter()
        response = client.get("/slow")
        assert time.perf_counter() - started < 1.4                   # answered at the limit, not after the work
        assert response.status_code == 504
        assert response.json() == {"error": {"code": "timeout",
                                             "message": "The request took longer than its limit of 0.5 s"}}
        assert finished.wait(5)                                       # the worker ran to its end, harmlessly
        crashed = client.get("/boom")
        assert crashed.status_code == 500 and crashed.json()["error"]["code"] == "internal_error"
        assert "unexpected bug" not in crashed.text                   # no internals, no traceback
        assert client.get("/health").status_code == 404               # the server still answers


class RecordingAnalyzer:
    """Implements the Analyzer protocol and records what it was given (to check the session's scheduling)."""

    def __init__(self, name: str):
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.seen_: list[tuple[float, bool, object]] = []

    def update(self, packet, face, fatigue_state=None):
        self.seen_.append((packet.t, face is not None, fatigue_state))
        return {"frames": len(self.seen_), "t": packet.t}

    def summary(self):
        return {"frames": len(self.seen_)}


def test_every_frame_reaches_fatigue_and_vitals_but_emotion_only_five_times_a_second(astronaut_bgr):
    analyzers = {name: RecordingAnalyzer(name) for name in ("fatigue", "emotion", "vitals")}
    settings = ApiSettings().with_overrides(emotion_interval_s=0.2)
    store = SessionStore(settings, analyzer_factory=lambda method, mode: specs_for(analyzers), clock=FakeClock())
    session = store.create()
    small = cv2.resize(astronaut_bgr, (256, 256))
    with store.use(session.session_id) as held:
        outcomes = [held.process(small, i / 30) for i in range(30)]
    assert len(analyzers["fatigue"].seen_) == len(analyzers["vitals"].seen_) == 30
    emotion_times = [t for t, _, _ in analyzers["emotion"].seen_]
    assert emotion_times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=1 / 30 + 1e-9)
    # emotion sees the fatigue analyzer's state of the same frame; between its updates its last state stands
    assert all(state == {"frames": 1 + round(t * 30), "t": t} for t, _, state in analyzers["emotion"].seen_)
    assert outcomes[3].states["emotion"] == outcomes[0].states["emotion"] and "emotion" not in outcomes[3].timings_s
    assert session.summaries() == {"fatigue": {"frames": 30}, "emotion": {"frames": 5}, "vitals": {"frames": 30}}
