"""What the browser's camera path keeps of the pulse: skin-colour SNR and heart-rate error, file vs WebRTC.

    .venv/bin/python benchmarks/browser_pulse.py [--clip synth | PHYSRECORDER/Example/v01] [--seconds 30]
        [--variants default,sdp-bitrate] [--json]

The clip (a synthetic pulse clip with a realistic 0.8 % pulse, or a real lossless recording such as the
PhysRecorder example: a folder of PNG frames with ``BVP.csv``) is written as a 15 frames/s YUV4MPEG2 file played
forward then backward (a seamless loop), and given to headless Chromium as its fake camera. A page on 127.0.0.1
sends the camera over WebRTC to an aiortc peer in this process (the same libraries streamlit-webrtc uses: the
browser's VP8 encoder with its own rate control, aiortc's decoder). The received frames and the file's own frames
go through the same measurement: FaceMesh, the skin ROI mean colour, POS, 10 s windows every second.

Printed per path: median SNR at the true rate (dB, de Haan), median |window HR - truth| (bpm), share of windows
within 3 bpm and above the confidence gate, the clip report's heart rate, and for the WebRTC path the encoder's
mean bitrate, mean QP, resolution and quality limitation; "on the file clock" repeats the WebRTC numbers with
each frame timed by the frame number stamped in its corner (the codec's loss alone, without playback jitter).
Each frame's number is stamped as 12 black/white blocks in the top-left corner (away from the face).

Variants (answer-side SDP changes, what a server can do without touching the browser's JavaScript):
- ``default``: aiortc's answer as is (what streamlit-webrtc sends);
- ``sdp-bitrate``: the answer's VP8 ``a=fmtp`` gets ``x-google-min-bitrate`` / ``x-google-start-bitrate`` /
  ``x-google-max-bitrate`` and the video section ``b=AS`` (see ``smartmirror.ui.sdp``; what the app sends).

Measured (2026-12-01, Chromium 156, 2 shared cores, POS, 30 s of frames):

| clip | path | SNR dB | within 3 bpm | clip HR (truth) | encoder |
|---|---|---|---|---|---|
| PhysRecorder v01 (real) | file | -0.07 | 0.80 | 72.3 (71.1) | |
| | WebRTC default | -4.90 | 0.38 | 63.9 | 608 kbit/s, QP 7.9 |
| | WebRTC sdp-bitrate | +0.23 | 0.81 | 72.4 | 1490 kbit/s, QP 2.0 |
| synthetic, 0.8 % pulse | file | +9.28 | 0.93 | 84.3 (84.0) | |
| | WebRTC default | -8.16 | 0.06 | 51.1 | 718 kbit/s, QP 14.1 |
| | WebRTC sdp-bitrate | +0.36 | 0.75 | 84.7 | 2592 kbit/s, QP 3.1 |
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from smartmirror.ui.camera_file import ping_pong, read_y4m, write_y4m  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FPS = 15

PAGE = """<!doctype html><html><body><video id=v autoplay muted playsinline></video><script>
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  document.getElementById('v').srcObject = stream;
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTrack(stream.getVideoTracks()[0], stream);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
  const res = await fetch('/offer' + location.search, {method: 'POST',
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})});
  await pc.setRemoteDescription(await res.json());
  window.__stats = [];
  setInterval(async () => {
    const report = await pc.getStats();
    report.forEach(s => { if (s.type === 'outbound-rtp' && s.kind === 'video') window.__stats.push({
      t: s.timestamp, bytes: s.bytesSent, frames: s.framesEncoded, qp: s.qpSum, w: s.frameWidth, h: s.frameHeight,
      limit: s.qualityLimitationReason, encoder: s.encoderImplementation}); });
  }, 1000);
})();
</script></body></html>"""


# ------------------------------------------------------------------ clips
def synth_clip(seconds: float = 20.0) -> tuple[list[np.ndarray], float, str]:
    """A 640x480 synthetic clip at 84 bpm with a 0.8 % pulse (28 whole beats in 20 s)."""
    from smartmirror.synth import SynthConfig, generate_frames

    config = SynthConfig(duration_s=seconds, fps=FPS, width=640, height=480, heart_rate_bpm=84.0, hrv_sd_ms=0.0,
                         respiratory_sinus_arrhythmia_bpm=0.0, respiration_rate_bpm=12.0, pulse_amplitude=0.008,
                         seed=3)
    packets, truth = generate_frames(config)
    return ping_pong([p.image for p in packets]), float(truth.heart_rate_bpm), "synthetic 0.8 % pulse, 84 bpm"


def loop_frames(name: str, frames: int) -> tuple[int, int]:
    """Where the recording's ping-pong loop turns: at pulse peaks (``scripts/make_physrecorder_clip.py`` found
    them for v01 and wrote them to tests/data); the whole clip for other recordings."""
    truth = Path(__file__).resolve().parents[1] / "tests" / "data" / f"physrecorder_{name}_truth.json"
    if truth.exists():
        first, last = json.loads(truth.read_text())["loop_frames"]
        return first, last
    return 0, frames - 1


def physrecorder_clip(folder: Path) -> tuple[list[np.ndarray], float, str]:
    """A PhysRecorder recording (PNG frames, ``BVP.csv``) at 15 frames/s, ping-pong between pulse peaks."""
    with open(folder / "BVP.csv") as f:
        rows = [(float(r["timestamp"]), float(r["bvp"])) for r in csv.DictReader(f)]
    times, bvp = np.array(rows).T
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_physrecorder_clip import contact_heart_rate_bpm

    truth = contact_heart_rate_bpm(times, bvp)
    pngs = sorted((folder / "pictures_ZIP_RAW_RGB").glob("*.png"))
    step = max(1, round(30 / FPS))
    frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in pngs[::step]]  # BGR, as OpenCV wrote them
    first, last = loop_frames(folder.name, len(frames))
    label = f"PhysRecorder {folder.name} (real, lossless), contact PPG {truth:.1f} bpm"
    return ping_pong(frames[first:last + 1]), truth, label


# ------------------------------------------------------------------ frame numbers
BITS, BLOCK = 12, 16


def stamp_index(image: np.ndarray, index: int) -> np.ndarray:
    """A copy of ``image`` with ``index`` as 12 black/white 16x16 blocks along its top-left edge."""
    out = image.copy()
    for bit in range(BITS):
        out[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255 if index >> bit & 1 else 0
    return out


def read_index(image: np.ndarray) -> int:
    """The index :func:`stamp_index` wrote (block centres, so codec ringing at the edges does not matter)."""
    return sum(1 << bit for bit in range(BITS)
               if image[4:BLOCK - 4, bit * BLOCK + 4:(bit + 1) * BLOCK - 4].mean() > 127)


# ------------------------------------------------------------------ measurement
def roi_trace(frames: list[np.ndarray], times_s: np.ndarray):
    """The vitals' per-frame measurement (FaceMesh, smoothed landmarks, skin ROI mean) as a VitalsTrace."""
    from smartmirror.face import FaceTracker
    from smartmirror.vitals.analyzer import face_vertical_position
    from smartmirror.vitals.pipeline import VitalsTrace
    from smartmirror.vitals.signal import LandmarkSmoother, skin_roi_mean_rgb

    rgb, presence, skin, face_y = [], [], [], []
    smoother = LandmarkSmoother()
    with FaceTracker() as tracker:
        for image in frames:
            face = tracker.process(image)
            if face is None:
                smoother.reset()
                rgb.append(np.full(3, np.nan))
                presence.append(np.nan)
                skin.append(np.nan)
                face_y.append(np.nan)
                continue
            sample = skin_roi_mean_rgb(image, smoother.update(face.landmarks_px))
            rgb.append(sample.rgb)
            presence.append(face.presence_score)
            skin.append(sample.skin_fraction)
            face_y.append(face_vertical_position(face))
    return VitalsTrace(np.asarray(times_s, float), np.array(rgb), np.array(presence), np.array(skin),
                       np.array(face_y))


def pulse_metrics(trace, truth_bpm: float, method: str = "pos") -> dict:
    """Median SNR at the truth and window HR errors over 10 s windows every 1 s; the clip report's HR."""
    from smartmirror.vitals import heart, spectrum
    from smartmirror.vitals.pipeline import analyze_trace, build_segments
    from smartmirror.vitals.signal import GRID_RATE_HZ, bandpass

    snrs, errors, confident = [], [], []
    window = int(heart.WINDOW_S * GRID_RATE_HZ)
    step = int(heart.STEP_S * GRID_RATE_HZ)
    for segment in build_segments(trace, method):
        for stop in range(window, len(segment.pulse) + 1, step):
            pulse = segment.pulse[stop - window: stop]
            filtered = bandpass(pulse, sampling_rate=GRID_RATE_HZ, low_hz=0.6, high_hz=4.0)
            freqs, power = spectrum.pulse_spectrum(filtered, sampling_rate=GRID_RATE_HZ)
            snrs.append(spectrum.pulse_snr_db(freqs, power, truth_bpm))
            estimate = heart.estimate_window(pulse, segment.rgb[stop - window: stop], sampling_rate=GRID_RATE_HZ)
            errors.append(abs(estimate.bpm - truth_bpm) if estimate.bpm is not None else float("inf"))
            confident.append(estimate.confidence >= heart.CONFIDENCE_GATE)
    clip = analyze_trace(trace, method=method).heart_rate
    finite = [e for e in errors if np.isfinite(e)]
    return {
        "windows": len(snrs),
        "snr_db_median": round(statistics.median(snrs), 2) if snrs else None,
        "hr_abs_error_median_bpm": round(statistics.median(finite), 1) if finite else None,
        "within_3_bpm": round(sum(e <= 3 for e in errors) / len(errors), 2) if errors else None,
        "above_gate": round(sum(confident) / len(confident), 2) if confident else None,
        "clip_hr_bpm": clip.tracked_bpm and round(clip.tracked_bpm, 1),
        "face_frames": int(np.isfinite(trace.presence).sum()), "frames": trace.frames,
    }


# ------------------------------------------------------------------ the browser path
class Receiver:
    """An aiortc peer on its own event loop thread that answers one offer and keeps the received frames."""

    def __init__(self, seconds: float, variant: str):
        self.seconds = seconds
        self.variant = variant
        self.frames: list[tuple[float, np.ndarray]] = []
        self.done = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.pc = None

    def answer(self, offer: dict) -> dict:
        return asyncio.run_coroutine_threadsafe(self._answer(offer), self.loop).result(20)

    async def _answer(self, offer: dict) -> dict:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from smartmirror.ui.sdp import raise_video_bitrate

        self.pc = pc = RTCPeerConnection()

        @pc.on("track")
        def on_track(track):
            asyncio.ensure_future(self._consume(track))

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        sdp = pc.localDescription.sdp
        if self.variant == "sdp-bitrate":
            sdp = raise_video_bitrate(sdp)
        return {"sdp": sdp, "type": "answer"}

    async def _consume(self, track) -> None:
        start = None
        while not self.done.is_set():
            frame = await track.recv()
            t = float(frame.time)
            start = t if start is None else start
            if t - start > 3.0:  # skip the first seconds (the encoder's start-up ramp)
                self.frames.append((t, frame.to_ndarray(format="yuv420p")))
            if t - start > 3.0 + self.seconds:
                self.done.set()

    def close(self) -> None:
        if self.pc is not None:
            asyncio.run_coroutine_threadsafe(self.pc.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def browser_path(y4m: Path, seconds: float, variant: str) -> tuple[list[np.ndarray], np.ndarray, dict]:
    from playwright.sync_api import sync_playwright

    receiver = Receiver(seconds, variant)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            offer = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps(receiver.answer(offer)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        if not receiver.done.wait(seconds + 60):
            raise SystemExit(f"WebRTC delivered only {len(receiver.frames)} frames")
        stats = page.evaluate("window.__stats")
        browser.close()
    server.shutdown()
    receiver.close()
    times = np.array([t for t, _ in receiver.frames])
    import av

    images = []
    for _, yuv in receiver.frames:
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        images.append(frame.to_ndarray(format="bgr24"))
    return images, times, encoder_summary(stats)


def encoder_summary(stats: list[dict]) -> dict:
    """Mean bitrate (kbit/s), mean QP, last resolution and quality limitation from outbound-rtp samples."""
    if len(stats) < 2:
        return {}
    tail = stats[len(stats) // 3:]
    first, last = tail[0], tail[-1]
    seconds = (last["t"] - first["t"]) / 1000.0
    frames = max(1, last["frames"] - first["frames"])
    return {
        "kbit_s": round((last["bytes"] - first["bytes"]) * 8 / 1000 / max(seconds, 1e-3)),
        "mean_qp": round((last["qp"] - first["qp"]) / frames, 1) if last.get("qp") is not None else None,
        "resolution": f"{last['w']}x{last['h']}", "limited_by": last.get("limit"),
        "encoder": last.get("encoder"), "fps": round(frames / max(seconds, 1e-3), 1),
    }


def save_trace(folder: Path | None, name: str, trace) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / f"{name}.npz", times_s=trace.times_s, rgb=trace.rgb, presence=trace.presence,
                 skin_fraction=trace.skin_fraction, face_y=trace.face_y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="synth", help="'synth' or a PhysRecorder recording folder")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of WebRTC frames kept per variant")
    parser.add_argument("--variants", default="default,sdp-bitrate")
    parser.add_argument("--method", default="pos")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save-traces", type=Path, help="folder for each path's ROI trace (npz)")
    args = parser.parse_args(argv)
    frames, truth, label = synth_clip() if args.clip == "synth" else physrecorder_clip(Path(args.clip))
    results: dict = {"clip": label, "truth_bpm": round(truth, 1), "method": args.method}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        write_y4m(y4m, (stamp_index(image, i) for i, image in enumerate(frames)), fps=FPS)
        del frames
        file_frames, fps = read_y4m(y4m)
        n = min(len(file_frames), int(args.seconds * fps))
        started = time.perf_counter()
        file_trace = roi_trace(file_frames[:n], np.arange(n) / fps)
        save_trace(args.save_traces, "file", file_trace)
        results["file"] = pulse_metrics(file_trace, truth, args.method)
        del file_frames
        print(f"file: {results['file']} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        for variant in args.variants.split(","):
            images, times, encoder = browser_path(y4m, args.seconds, variant)
            trace = roi_trace(images, times)
            save_trace(args.save_traces, f"webrtc-{variant}", trace)
            metrics = pulse_metrics(trace, truth, args.method)
            # The same colours on the file's own clock (frame numbers read back): the codec's loss alone,
            # without the fake camera's playback jitter.
            index = np.array([read_index(image) for image in images])
            unwrapped = np.concatenate([[0], np.cumsum(np.mod(np.diff(index), 1 << BITS))]) + index[0]
            source_times = unwrapped / FPS
            keep = np.concatenate([[True], np.diff(source_times) > 0])
            trace.times_s = source_times
            for name in ("times_s", "rgb", "presence", "skin_fraction", "face_y"):
                setattr(trace, name, getattr(trace, name)[keep])
            on_file_clock = pulse_metrics(trace, truth, args.method)
            playback = (source_times[-1] - source_times[0]) / (times[-1] - times[0])
            results[f"webrtc:{variant}"] = metrics | {"encoder": encoder, "playback_speed": round(playback, 3),
                                                       "repeated_frames": int((~keep).sum()),
                                                       "file_clock": on_file_clock}
            print(f"webrtc:{variant}: {results[f'webrtc:{variant}']}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{label}; truth {truth:.1f} bpm; method {args.method}")
        for key, value in results.items():
            if isinstance(value, dict):
                print(f"  {key:20s} SNR {value['snr_db_median']} dB | median |err| "
                      f"{value['hr_abs_error_median_bpm']} bpm | within 3 bpm {value['within_3_bpm']} | clip HR "
                      f"{value['clip_hr_bpm']} | {value.get('encoder', '')}")
                if "file_clock" in value:
                    v = value["file_clock"]
                    print(f"  {'  on the file clock':20s} SNR {v['snr_db_median']} dB | median |err| "
                          f"{v['hr_abs_error_median_bpm']} bpm | within 3 bpm {v['within_3_bpm']} | clip HR "
                          f"{v['clip_hr_bpm']} | playback speed {value['playback_speed']}, "
                          f"{value['repeated_frames']} repeated frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
