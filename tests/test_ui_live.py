"""The live page's pure helpers: the SDP answer edit that raises the browser's video bitrate, the heart-rate
hold, and the fake-camera clip files (written and decoded for real)."""

from __future__ import annotations

import numpy as np
import pytest

from smartmirror.ui.camera_file import ping_pong, read_y4m, write_y4m
from smartmirror.ui.hold import ReadingHold
from smartmirror.ui.sdp import raise_video_bitrate

# An aiortc answer to a Chromium offer (audio + video, VP8 with RTX, H.264), trimmed to the relevant lines.
ANSWER = "\r\n".join([
    "v=0", "o=- 3917000000 3917000000 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 127.0.0.1", "a=mid:0", "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "c=IN IP4 127.0.0.1", "a=sendrecv", "a=mid:1",
    "a=rtcp-fb:96 goog-remb", "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;x-google-max-bitrate=99",
]) + "\r\n"


def test_answer_asks_the_video_encoder_for_more_bits_and_leaves_the_rest():
    edited = raise_video_bitrate(ANSWER, min_kbit_s=2500, start_kbit_s=4000, max_kbit_s=8000)
    lines = edited.split("\r\n")
    assert edited.endswith("\r\n") and "\n" not in edited.replace("\r\n", "")
    keys = "x-google-min-bitrate=2500;x-google-start-bitrate=4000;x-google-max-bitrate=8000"
    video = lines[lines.index("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102"):]
    assert video[2] == "b=AS:8000" and video[1].startswith("c=")
    assert f"a=fmtp:96 {keys}" in video  # VP8 had no fmtp line: one is added after its rtpmap
    assert video.index(f"a=fmtp:96 {keys}") == video.index("a=rtpmap:96 VP8/90000") + 1
    h264 = [line for line in video if line.startswith("a=fmtp:102 ")]
    assert h264 == [f"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;{keys}"]
    assert "a=fmtp:97 apt=96" in video  # RTX untouched
    audio = lines[lines.index("m=audio 9 UDP/TLS/RTP/SAVPF 111"):lines.index("m=video 9 UDP/TLS/RTP/SAVPF 96 97 102")]
    assert not any(line.startswith("b=") or "x-google" in line for line in audio)
    assert raise_video_bitrate(edited, min_kbit_s=2500, start_kbit_s=4000, max_kbit_s=8000) == edited  # idempotent


def test_answer_without_video_is_unchanged_but_normalised():
    audio_only = ANSWER.split("m=video")[0]
    assert raise_video_bitrate(audio_only.replace("\r\n", "\n")) == audio_only


def test_hold_keeps_a_confident_rate_for_a_few_seconds_only():
    hold = ReadingHold(hold_s=5.0)
    assert hold.update(None, face_present=True, now=0.0).bpm is None  # nothing confident yet
    assert hold.update(72.0, face_present=True, now=1.0).held_for_s is None
    held = hold.update(None, face_present=True, now=4.0)
    assert (held.bpm, held.held_for_s) == (72.0, 3.0)
    assert hold.update(None, face_present=True, now=6.5).bpm is None  # 5.5 s: too old
    assert hold.update(None, face_present=True, now=7.0).bpm is None  # and forgotten
    hold.update(70.0, face_present=True, now=8.0)
    assert hold.update(None, face_present=False, now=8.5).bpm is None  # the face left: never held


def test_ping_pong_loops_without_repeating_a_frame():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
    assert [int(f[0, 0, 0]) for f in ping_pong(frames)] == [0, 1, 2, 3, 4, 3, 2, 1]


def test_y4m_round_trip_keeps_a_sub_level_colour_change_on_average(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(90, 160, size=(48, 64, 3)).astype(np.float64)
    frames = [np.clip(base * (1 + 0.004 * np.sin(i)), 0, 255).round().astype(np.uint8) for i in range(12)]
    path = tmp_path / "clip.y4m"
    assert write_y4m(path, frames, fps=15) == 12
    assert path.read_bytes().startswith(b"YUV4MPEG2 W64 H48 F15:1")
    decoded, fps = read_y4m(path)
    assert fps == 15 and len(decoded) == 12 and decoded[0].shape == (48, 64, 3)
    sent = np.array([f[..., 1].mean() for f in frames])
    got = np.array([f[..., 1].mean() for f in decoded])
    assert np.corrcoef(sent, got)[0, 1] > 0.99  # the 0.4 % change survives I420 (lossless in time)


def test_y4m_refuses_frames_of_another_size(tmp_path):
    with pytest.raises(ValueError, match="frame 1 is 8x8"):
        write_y4m(tmp_path / "x.y4m", [np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], fps=15)


def test_streamlit_webrtc_sends_the_edited_answer():
    from types import SimpleNamespace

    from aiortc import RTCSessionDescription
    from streamlit_webrtc.webrtc import WebRtcWorker

    from smartmirror.ui.sdp import install_answer_bitrate

    install_answer_bitrate()
    install_answer_bitrate()  # idempotent: wrapped once
    worker = SimpleNamespace(pc=SimpleNamespace(localDescription=RTCSessionDescription(sdp=ANSWER, type="answer")))
    sent = WebRtcWorker.local_description.fget(worker)
    assert sent.type == "answer" and sent.sdp == raise_video_bitrate(ANSWER)
    assert sent.sdp.count("b=AS:") == 1
    worker.pc.localDescription = None
    assert WebRtcWorker.local_description.fget(worker) is None


def _remb_estimates(estimator, *, seconds: float, delay_growth_ms_per_s: float) -> list[int]:
    """REMB bit rates an aiortc estimator sends for a 1.5 Mbit/s video stream (100 packets/s of 1875 bytes) whose
    arrival falls behind its send time by ``delay_growth_ms_per_s`` each second (a busy receiving process)."""
    estimates = []
    for k in range(int(seconds * 100)):
        send_s = k / 100
        arrival_ms = int(1000 * send_s * (1 + delay_growth_ms_per_s / 1000)) + 50
        abs_send_time = int(send_s * (1 << 18)) & 0xFFFFFF  # 6.18 fixed point seconds, 24 bits
        remb = estimator.add(arrival_time_ms=arrival_ms, abs_send_time=abs_send_time, payload_size=1875, ssrc=1)
        if remb is not None:
            estimates.append(remb[0])
    return estimates


def test_receiver_feedback_never_asks_the_browser_for_less_than_the_floor():
    """aiortc's own delay-based estimator reads a receiving process that falls behind as congestion and lowers
    its REMB (the browser follows it: 2.1 Mbit/s -> 240 kbit/s in 40 s in the app); the floored one does not."""
    from aiortc import rtcrtpreceiver
    from aiortc.rate import RemoteBitrateEstimator

    from smartmirror.ui.sdp import MIN_KBIT_S, floor_receiver_bitrate_feedback, floored_remb

    assert floored_remb(None) is None
    assert floored_remb((300_000, [7])) == (MIN_KBIT_S * 1000, [7])
    assert floored_remb((6_000_000, [7])) == (6_000_000, [7])

    plain = _remb_estimates(RemoteBitrateEstimator(), seconds=20, delay_growth_ms_per_s=30)
    assert plain and min(plain) < MIN_KBIT_S * 1000  # the problem, reproduced with aiortc's own class

    floor_receiver_bitrate_feedback()
    floor_receiver_bitrate_feedback()  # idempotent: one subclass
    floored_class = rtcrtpreceiver.RemoteBitrateEstimator
    assert floored_class is not RemoteBitrateEstimator and issubclass(floored_class, RemoteBitrateEstimator)
    floored = _remb_estimates(floored_class(), seconds=20, delay_growth_ms_per_s=30)
    assert len(floored) == len(plain) and min(floored) >= MIN_KBIT_S * 1000
