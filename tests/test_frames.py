"""FramePacket timing through real encode/decode, FrameBuffer bounds and concurrency, bad video files."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from smartmirror.frames import FrameBuffer, FramePacket, VideoError, read_video_packets


def _packet(t: float, size: int = 8) -> FramePacket:
    return FramePacket(t=t, image=np.zeros((size, size, 3), np.uint8))


def test_buffer_is_bounded_by_count_and_by_seconds():
    by_count = FrameBuffer(max_frames=10, max_seconds=100.0)
    for i in range(25):
        by_count.push(_packet(i / 30))
    assert len(by_count) == 10
    assert by_count.latest().t == pytest.approx(24 / 30)

    by_time = FrameBuffer(max_frames=1000, max_seconds=2.0)
    for i in range(300):
        by_time.push(_packet(i / 30))
    kept = by_time.window(1e9)
    assert kept[-1].t - kept[0].t <= 2.0 + 1e-9
    assert len(kept) == 61
    assert [p.t for p in by_time.window(1.0)] == pytest.approx([i / 30 for i in range(269, 300)])


def test_since_returns_only_newer_packets_in_order():
    buffer = FrameBuffer(max_frames=5)
    seqs = [buffer.push(_packet(i)) for i in range(3)]
    assert seqs == [1, 2, 3]
    assert [s for s, _ in buffer.since(1)] == [2, 3]
    assert buffer.since(3) == []
    assert not buffer.wait_for_newer(3, timeout=0.05)


def test_buffer_survives_one_writer_and_three_readers_with_bounded_memory():
    buffer = FrameBuffer(max_frames=60, max_seconds=2.0)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen = [0, 0, 0]
    max_len = [0]

    def writer():
        t = 0.0
        image = np.zeros((480, 640, 3), np.uint8)  # real frame size: memory matters
        while not stop.is_set():
            t += 1 / 120
            buffer.push(FramePacket(t=t, image=image))
            max_len[0] = max(max_len[0], len(buffer))
            time.sleep(0.001)

    def reader(k: int):
        last = 0
        try:
            while not stop.is_set():
                if buffer.wait_for_newer(last, timeout=0.5):
                    new = buffer.since(last)
                    if new:
                        times = [p.t for _, p in new]
                        assert times == sorted(times)
                        last = new[-1][0]
                        seen[k] += len(new)
                    window = buffer.window(1.0)
                    if window:
                        assert window[-1].t - window[0].t <= 1.0 + 1e-9
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(10.0)
    stop.set()
    buffer.close()
    for thread in threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert max_len[0] <= 60
    assert all(n > 500 for n in seen), seen


def test_synthetic_clip_round_trips_with_monotonic_timestamps(synth_clip):
    clip_dir, truth = synth_clip(duration_s=4.0, width=320, height=240, codec="mjpeg")
    packets = list(read_video_packets(clip_dir / "vid.avi"))
    assert len(packets) == len(truth.frame_times_s) == 120
    times = np.array([p.t for p in packets])
    assert np.all(np.diff(times) > 0)
    assert times == pytest.approx(truth.frame_times_s, abs=1e-3)
    assert packets[0].image.shape == (240, 320, 3)
    assert [p.index for p in packets] == list(range(120))


@pytest.mark.parametrize("video_name", ["vid.mkv", "vid.avi"])
def test_dropped_frames_keep_true_timestamps(synth_clip, video_name):
    clip_dir, truth = synth_clip(
        video_name=video_name, duration_s=4.0, width=320, height=240, drop_prob=0.25, seed=3
    )
    packets = list(read_video_packets(clip_dir / video_name))
    assert 60 < len(packets) < 110  # about a quarter of 120 dropped
    assert len(packets) == len(truth.frame_times_s)
    times = np.array([p.t for p in packets])
    assert times == pytest.approx(truth.frame_times_s, abs=1e-3)
    assert np.max(np.diff(times)) > 1.5 / 30  # the gaps are really there


def test_jittered_capture_times_survive_in_mkv(synth_clip):
    clip_dir, truth = synth_clip(video_name="vid.mkv", duration_s=3.0, width=320, height=240, frame_jitter_s=0.008)
    times = np.array([p.t for p in read_video_packets(clip_dir / "vid.mkv")])
    assert times == pytest.approx(truth.frame_times_s, abs=1.5e-3)  # millisecond time base


def test_max_frames_and_loop(synth_clip):
    clip_dir, _ = synth_clip(duration_s=2.0, width=320, height=240)
    packets = list(read_video_packets(clip_dir / "vid.avi", loop=True, max_frames=150))
    times = np.array([p.t for p in packets])
    assert len(packets) == 150
    assert np.all(np.diff(times) > 0)  # the clock keeps going across loops


def test_realtime_pacing(synth_clip):
    clip_dir, _ = synth_clip(duration_s=2.0, width=320, height=240)
    start = time.monotonic()
    packets = list(read_video_packets(clip_dir / "vid.avi", realtime=True, max_seconds=1.0))
    elapsed = time.monotonic() - start
    assert packets[-1].t <= 1.0
    assert elapsed >= 0.9


def test_bad_video_files_raise_clear_errors(tmp_path, synth_clip):
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    clip_dir, _ = synth_clip(duration_s=2.0, width=320, height=240, codec="mjpeg")
    data = (clip_dir / "vid.avi").read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[:600])
    cases = {tmp_path / "missing.avi": "not_found", empty: "empty_file", text: "not_a_video", truncated: None}
    for path, code in cases.items():
        with pytest.raises(VideoError) as info:
            list(read_video_packets(path))
        if code is not None:
            assert info.value.code == code
        assert info.value.message
    # an audio-only file: a container FFmpeg reads, with no video stream
    import av

    audio = tmp_path / "tone.wav"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    with pytest.raises(VideoError) as info:
        list(read_video_packets(audio))
    assert info.value.code == "no_video_stream"

