"""The app in a real browser with a given live pulse method: frames/s shown and analysed, and the heart rate.

Usage::

    python benchmarks/app_browser_fps.py [--methods pos,facephys-rlap] [--clip VIDEO] [--fps 30]
        [--seconds 45] [--truth-bpm 71.1] [--meter on,off]

Runs ``streamlit run app.py`` on 127.0.0.1 and headless Chromium whose fake camera plays ``--clip`` (default the
committed PhysRecorder recording, 15 frames/s; a 30 frames/s clip such as a UBFC subject tests the 25 frames/s
target) played forward then backward as a seamless loop, with the page's pulse method chosen by
``?pulse_method=``. The helpers are the browser test's (tests/test_app_browser.py). After the face is found it
polls the page's status line and heart-rate metric twice a second for ``--seconds`` and prints, per method, the
median "fps shown" / "fps analysed" over the last two thirds, the share of polls with a heart rate (and, with
``--truth-bpm``, within 3 bpm of it), the last one, and the pulse-source caption naming the method. ``--meter``
runs each method with the page's skin meter on and/or off (``SMARTMIRROR_SKIN_METER``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def camera_file(clip: Path, fps: float, folder: Path, seconds: float = 20.0) -> Path:
    """The clip's first ``seconds`` as a ping-pong YUV4MPEG2 file for Chromium's fake camera."""
    import av

    from smartmirror.ui.camera_file import ping_pong, write_y4m

    with av.open(str(clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= seconds * fps:
                break
    path = folder / "camera.y4m"
    write_y4m(path, ping_pong(frames), fps=int(round(fps)))
    return path


def run_method(method: str, camera: Path, seconds: float, folder: Path, meter: bool = True,
               truth_bpm: float | None = None) -> dict:
    from playwright.sync_api import sync_playwright
    from test_app_browser import CHROMIUM, CHROMIUM_ARGS, App, _heart_rate, _start_mirror, _status

    app = App(folder, {"SMARTMIRROR_SKIN_METER": "1" if meter else "0"})
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15_000)
        page.goto(app.url + f"?source=webcam&pulse_method={method}", wait_until="domcontentloaded")
        page.get_by_text("not a medical device").first.wait_for(state="visible", timeout=30_000)
        _start_mirror(page, app)
        captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
        source_line = next((c for c in captions if "Pulse method:" in c), "")
        face_found = time.monotonic()
        first_within = None
        meter_in_use = False
        polls = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            status = _status(page)
            shown = re.search(r"([\d.]+) fps shown", status)
            analysed = re.search(r"([\d.]+) fps analysed", status)
            rate = _heart_rate(page)
            polls.append((float(shown.group(1)) if shown else None, float(analysed.group(1)) if analysed else None,
                          rate))
            if first_within is None and truth_bpm is not None and rate is not None and abs(rate - truth_bpm) <= 3:
                first_within = time.monotonic() - face_found
            meter_in_use = meter_in_use or "raw frames" in " ".join(
                page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
            page.wait_for_timeout(500)
        browser.close()
    finally:
        playwright.stop()
        app.stop()
    steady = polls[len(polls) // 3:]
    shown = [p[0] for p in steady if p[0] is not None]
    analysed = [p[1] for p in steady if p[1] is not None]
    rates = [p[2] for p in polls if p[2] is not None]
    after_first = [p[2] for p in polls[int(20 / 0.5):]]  # from 20 s after the face was found
    return {
        "method": method,
        "meter": meter_in_use,
        "first_within_3_bpm_s": first_within,
        "within_3_bpm_share_after_20_s": None if truth_bpm is None or not after_first else
        sum(r is not None and abs(r - truth_bpm) <= 3 for r in after_first) / len(after_first),
        "median_heart_rate": statistics.median(rates) if rates else None,
        "fps_shown": statistics.median(shown) if shown else None,
        "fps_analysed": statistics.median(analysed) if analysed else None,
        "heart_rate_share": len(rates) / max(len(polls), 1),
        "last_heart_rate": rates[-1] if rates else None,
        "names_method": f"Pulse method: {method}" in source_line,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="pos,facephys-rlap")
    parser.add_argument("--clip", type=Path, default=REPO / "tests" / "data" / "physrecorder_v01_15fps.mkv")
    parser.add_argument("--fps", type=float, default=15.0, help="the fake camera's frame rate (the clip's own)")
    parser.add_argument("--seconds", type=float, default=45.0, help="seconds polled after the face is found")
    parser.add_argument("--truth-bpm", type=float, default=None)
    parser.add_argument("--meter", default="on", help="the page's skin meter: on, off or on,off")
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory() as tmp:
        camera = camera_file(args.clip, args.fps, Path(tmp))
        for method in (m.strip() for m in args.methods.split(",") if m.strip()):
            for meter in (m.strip() == "on" for m in args.meter.split(",") if m.strip()):
                folder = Path(tmp) / f"{method}-{'meter' if meter else 'plain'}"
                folder.mkdir()
                row = run_method(method, camera, args.seconds, folder, meter=meter, truth_bpm=args.truth_bpm)
                within = row["within_3_bpm_share_after_20_s"]
                print(f"{method} (skin meter {'on' if meter else 'off'}, in use: {row['meter']}): {row['fps_shown']}"
                      f" fps shown, {row['fps_analysed']} fps analysed (camera {args.fps:g}); heart rate shown in"
                      f" {100 * row['heart_rate_share']:.0f} % of polls, median {row['median_heart_rate']}, last"
                      f" {row['last_heart_rate']} (truth {args.truth_bpm}); first within 3 bpm after"
                      f" {row['first_within_3_bpm_s'] and round(row['first_within_3_bpm_s'], 1)} s; within 3 bpm"
                      f" from 20 s on: {'-' if within is None else f'{within:.0%}'}; pulse-source line names the"
                      f" method: {row['names_method']}; load average {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
