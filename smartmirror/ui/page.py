"""The SmartMirror page (``app.py`` calls :func:`main`).

Layout: a sidebar with the mode (student wellness, driver, kiosk), the video source and the options; the
mirror (streamlit-webrtc) on the left with a status line; the live panels on the right, refreshed from the
engine's state store by ``st.fragment(run_every=...)`` about three times a second; the session history below.
"Wellness demo, not a medical device" stays visible at the top of the page and in the sidebar.

URL query parameters (and environment variables, for kiosks and tests) choose the start-up state:
``?source=webcam|demo|camera|file`` (``SMARTMIRROR_SOURCE``), ``?mode=wellness|driver|kiosk``
(``SMARTMIRROR_MODE``).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

import streamlit as st

from smartmirror.demo import demo_dir, demo_packets, ensure_demo_clip
from smartmirror.frames import camera_available, camera_packets, read_video_packets
from smartmirror.identity.optin import identity_enabled
from smartmirror.modes import MODES
from smartmirror.paths import user_data_dir
from smartmirror.ui import panels
from smartmirror.ui.format import DISCLAIMER
from smartmirror.ui.history import HistoryError, HistoryStore
from smartmirror.ui.hold import ReadingHold
from smartmirror.ui.sdp import MAX_KBIT_S, MIN_KBIT_S, install_answer_bitrate
from smartmirror.ui.session import MirrorSession
from smartmirror.ui.skin_meter import render_skin_meter, skin_meter_enabled
from smartmirror.ui.sources import (
    ConfigError,
    bytes_packets,
    folder_video,
    folder_videos,
    rtc_configuration,
    video_folder,
)
from smartmirror.vitals.methods import get_method, list_methods
from smartmirror.vitals.rppg import DEFAULT_METHOD

log = logging.getLogger(__name__)

REFRESH_S = 0.5  # the live panels refresh twice a second
SOURCES = {
    "webcam": "Browser webcam",
    "demo": "Demo clip (no camera needed)",
    "camera": "Local camera (this computer)",
    "file": "Video file",
}
MODE_LABELS = {"wellness": "Student wellness", "driver": "Driver (alerts first)", "kiosk": "Kiosk (forgets you)"}


def _initial(name: str, options: tuple[str, ...] | list[str], fallback: str) -> str:
    value = st.query_params.get(name) or os.environ.get(f"SMARTMIRROR_{name.upper()}", "")
    value = str(value).strip().lower()
    return value if value in options else fallback


@st.cache_resource(show_spinner=False)
def _local_camera_present() -> bool:
    try:
        return camera_available()
    except Exception:  # noqa: BLE001 - no OpenCV backend: treat as no camera
        return False


def _session() -> MirrorSession:
    if "mirror" not in st.session_state:
        st.session_state["mirror"] = MirrorSession()
    return st.session_state["mirror"]


def _sidebar() -> tuple[str, str, bool, bool, bool, bool, str | None]:
    with st.sidebar:
        st.header("SmartMirror")
        st.info(DISCLAIMER)
        mode_default = _initial("mode", MODES, "wellness")
        mode = st.radio("Mode", MODES, index=MODES.index(mode_default), format_func=MODE_LABELS.get, key="mode")
        camera_here = _local_camera_present()
        source_keys = list(SOURCES)
        source_default = _initial("source", source_keys, "webcam" if camera_here else "demo")
        source = st.radio("Video source", source_keys, index=source_keys.index(source_default),
                          format_func=SOURCES.get, key="source")
        show_landmarks = st.checkbox("Show face landmarks and skin regions", value=True, key="landmarks")
        keep_history = st.checkbox(
            "Keep session history on this computer", value=mode != "kiosk", disabled=mode == "kiosk",
            key=f"keep_history_{mode}",
            help="Numbers only (heart rate, stress, fatigue, emotion), every 5 s; never images. Kiosk keeps nothing.",
        )
        pacer = st.checkbox("Breathing pacer", value=False, key="pacer_toggle")
        pulse_method = _pulse_method_picker()
        identity = st.checkbox(
            "Estimate age and gender (opt-in)", value=_identity_default(), key="identity",
            help="Off by default. Estimates with their uncertainty; face-attribute models are known to be biased.",
        )
        if mode == "kiosk":
            st.caption("Kiosk: starts by itself and forgets everything 30 s after the face is gone.")
        if mode == "driver":
            st.caption("Driver: drowsiness alerts come first; never look away from the road for this screen.")
    return mode, source, show_landmarks, keep_history and mode != "kiosk", pacer, identity, pulse_method


def _pulse_method_picker() -> str | None:
    """The live pulse method (only those fast enough for 30 fps on 2 cores; the first choice from the
    ``pulse_method`` query parameter or SMARTMIRROR_PULSE_METHOD); names the clip-report-only ones."""
    live = list_methods(realtime_only=True)
    clip_only = sorted(set(list_methods()) - set(live))
    first = _initial("pulse_method", live, DEFAULT_METHOD if DEFAULT_METHOD in live else live[0])
    choice = st.selectbox("Pulse method", live, index=live.index(first), key="pulse_method")
    if clip_only:
        st.caption(f"Learned methods ({', '.join(clip_only)}) can't keep up live on this CPU: they are used in clip "
                   "reports only (`smartmirror analyze --method NAME`).")
    return None if choice == DEFAULT_METHOD else choice


def _identity_default() -> bool:
    """The opt-in's starting value: SMARTMIRROR_IDENTITY when set to a yes, else off."""
    try:
        return identity_enabled(None)
    except ValueError:
        return False


def _mirror(session: MirrorSession, source: str, mode: str) -> None:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    try:
        rtc = rtc_configuration()
    except ConfigError as error:
        st.error(f"{error}. Using no ICE servers (this computer only).")
        rtc = {"iceServers": []}
    common = dict(
        rtc_configuration=rtc,
        queued_video_frames_callback=session.queued_video_frames_callback,  # no frame lost to a late thread
        async_processing=True,
        desired_playing_state=True if mode == "kiosk" else None,
        video_html_attrs={"autoPlay": True, "controls": False, "muted": True, "style": {"width": "100%"}},
    )
    session.demo = source == "demo"
    if source == "webcam":
        install_answer_bitrate()  # the browser's VP8 at 2.5-8 Mbit/s, so the pulse's colour survives (ui/sdp.py)
        if skin_meter_enabled(session.pulse_method):
            _skin_meter_fragment(session)  # first, so it is loaded when the webrtc component asks for the camera
        webrtc_streamer(key="mirror-webcam", mode=WebRtcMode.SENDRECV,
                        media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False}, **common)
        _pulse_source_fragment(session)
        return
    track_key, factory = _server_source(source, session)
    if factory is None:
        return
    if source == "demo":
        st.caption("**DEMO**: a synthetic pulse clip of a public-domain face (72 bpm), looped; not a live camera.")
    track = session.track(track_key, factory)
    webrtc_streamer(key=f"mirror-{source}", mode=WebRtcMode.RECVONLY, source_video_track=track,
                    media_stream_constraints={"video": True, "audio": False}, **common)
    st.caption(pulse_source_caption(source, session.pulse_method))
    error = session.track_error(track_key)
    if error:
        st.error(f"The video source stopped: {error}")


@st.fragment(run_every=REFRESH_S)
def _skin_meter_fragment(session: MirrorSession) -> None:
    """The browser's skin meter (invisible, :mod:`smartmirror.ui.skin_meter`) with the newest skin mask."""
    render_skin_meter(session.meter_mask())


@st.fragment(run_every=REFRESH_S)
def _pulse_source_fragment(session: MirrorSession) -> None:
    """The line saying which pulse source is in use (the skin meter's, once its tagged frames arrive)."""
    st.caption(pulse_source_caption("webcam", session.pulse_method, meter=session.meter_active()))


def pulse_source_caption(source: str, method: str | None = None, *, meter: bool = False) -> str:
    """Where the heart rate's skin colour comes from (the browser path is lossy unless the page's skin meter
    measures the raw frames) and which method reads it."""
    spec = get_method(method or DEFAULT_METHOD)
    reader = f" Pulse method: {spec.name}" + (f" - {spec.description}" if spec.description else "")
    reader += ", a learned network run frame by frame." if spec.kind == "frames" else "."
    if source != "webcam":
        return "Pulse source: the video frames themselves, read on this computer before any lossy encoding." + reader
    if meter and spec.kind != "frames":
        return ("Pulse source: skin colour measured in this browser on the camera's raw frames, before the video "
                "is encoded (SmartMirror's skin meter; the mask comes from this computer's face tracker, the "
                "picture travels over WebRTC)." + reader)
    why = ("it reads the face picture, which only arrives encoded" if spec.kind == "frames"
           else "the in-page skin meter is not measuring")
    return (f"Pulse source: your browser's camera over WebRTC, {why} (VP8 asked for {MIN_KBIT_S / 1000:g}-"
            f"{MAX_KBIT_S / 1000:g} Mbit/s so sub-1 % colour changes survive the encoder; a weak pulse is shown as "
            "uncertain)." + reader)


def _server_source(source: str, session: MirrorSession):
    if source == "demo":
        if not (demo_dir() / "truth.json").exists():
            with st.spinner("Preparing the demo clip (once, about 20 s)..."):
                ensure_demo_clip()
        return "demo", demo_packets
    if source == "camera":
        if not _local_camera_present():
            st.warning("No camera found on this computer. Choose the browser webcam or the demo clip.")
            return "camera", None
        return "camera", camera_packets
    upload = st.file_uploader("A video of a face (decoded in memory, never stored)",
                              type=["mp4", "avi", "mkv", "mov", "webm"], key="upload")
    if upload is not None:
        data = upload.getvalue()
        return f"file:upload:{upload.name}:{len(data)}", lambda: bytes_packets(data, name=upload.name)
    try:
        folder = video_folder()
    except ConfigError as error:
        st.error(str(error))
        return "file", None
    if folder is None:
        st.caption("Choose a video to play it through the mirror (or set SMARTMIRROR_VIDEO_DIR to a folder of "
                   "videos to pick from).")
        return "file", None
    names = folder_videos(folder)
    choice = st.selectbox(f"...or a video from {folder.name}/", ["-"] + names, key="video_choice",
                          help="Video files in the folder SMARTMIRROR_VIDEO_DIR names")
    if choice in names:
        path = folder_video(folder, choice)
        return f"file:folder:{path}", lambda: read_video_packets(path, loop=True)
    st.caption("Choose a video to play it through the mirror." if names else f"No videos in {folder}.")
    return "file", None


@st.fragment(run_every=REFRESH_S)
def _status_fragment(session: MirrorSession) -> None:
    engine = session.engine
    if engine is None:
        return
    panels.render_status(engine.store.snapshot(), engine, session.callback_p95_ms())


@st.fragment(run_every=REFRESH_S)
def _panels_fragment(session: MirrorSession, mode: str, pacer_toggle: bool) -> None:
    engine = session.engine
    if engine is None:
        return
    if st.session_state.get("engine_generation") != (id(engine), engine.generation):  # new engine or kiosk forget
        st.session_state["engine_generation"] = (id(engine), engine.generation)
        st.session_state.pop("answered_suggestion", None)
        st.session_state.pop("pacer_started_at", None)
        st.session_state["heart_rate_hold"] = ReadingHold()
    hold = st.session_state.setdefault("heart_rate_hold", ReadingHold())
    snapshot = engine.store.snapshot()
    if mode == "driver":
        panels.render_fatigue(snapshot, driver=True)
        panels.render_suggestion(snapshot, engine)
        panels.render_vitals(snapshot, hold)
        panels.render_emotion(snapshot)
    else:
        panels.render_suggestion(snapshot, engine)
        panels.render_vitals(snapshot, hold)
        panels.render_emotion(snapshot)
        panels.render_fatigue(snapshot)
    if session.identity:
        panels.render_identity(snapshot)
    started = st.session_state.get("pacer_started_at")  # set by a breathing suggestion or the toggle
    if pacer_toggle and started is None:
        started = st.session_state["pacer_started_at"] = time.time()
    if started is not None:
        st.subheader("Breathing pacer")
        if not panels.render_pacer(started, duration_s=3600.0 if pacer_toggle else 64.0):
            st.session_state.pop("pacer_started_at", None)


def _history_csv() -> str:
    """All kept samples as CSV (made when the download button is clicked)."""
    store = HistoryStore(user_data_dir() / "history.sqlite3")
    try:
        return store.to_csv()
    finally:
        store.close()


@st.fragment(run_every=15.0)
def _history_fragment(session: MirrorSession, keep_history: bool) -> None:
    if not keep_history:
        st.caption("History is off: nothing is kept on this computer.")
        return
    store = HistoryStore(user_data_dir() / "history.sqlite3")
    try:
        sessions = store.sessions(limit=30)
        recorder = getattr(session.engine.on_sample, "__self__", None) if session.engine else None
        current_id = getattr(recorder, "session_id", None)
        current = store.samples(current_id, limit=720) if current_id is not None else []
        if current:
            st.markdown("**This session**")
            st.line_chart(
                {
                    "minutes": [(r["t_wall_s"] - current[0]["t_wall_s"]) / 60.0 for r in current],
                    "heart rate (bpm)": [r["heart_rate_bpm"] for r in current],
                    "stress (0-100)": [r["stress_score"] for r in current],
                    "drowsiness (%)": [None if r["drowsiness_probability"] is None
                                       else 100 * r["drowsiness_probability"] for r in current],
                },
                x="minutes",
                height=200,
            )
        if sessions:
            st.markdown("**Trends over sessions** (means)")
            st.line_chart(
                {
                    "session start": [datetime.fromtimestamp(s["started_at_s"]) for s in sessions],
                    "heart rate (bpm)": [s["heart_rate_bpm"] for s in sessions],
                    "stress (0-100)": [s["stress_score"] for s in sessions],
                    "drowsiness (%)": [None if s["drowsiness_probability"] is None
                                       else 100 * s["drowsiness_probability"] for s in sessions],
                },
                x="session start",
                height=200,
            )
            col_csv, col_clear = st.columns(2)
            col_csv.download_button("Export history as CSV", _history_csv, file_name="smartmirror_history.csv",
                                    mime="text/csv")
            if col_clear.button("Delete all history"):
                store.clear()
                st.toast("History deleted.")
        else:
            st.caption("No history yet: samples are kept every 5 s while your face is in view.")
    except HistoryError as error:
        st.warning(f"History unavailable: {error}")
    finally:
        store.close()


def main() -> None:
    """Draw the page."""
    st.set_page_config(page_title="SmartMirror", layout="wide")
    st.markdown(
        f'<div data-testid="disclaimer" style="padding:.4rem .8rem;border-radius:.4rem;background:#fff3cd;'
        f'color:#664d03;margin-bottom:.6rem"><b>{DISCLAIMER}</b></div>',
        unsafe_allow_html=True,
    )
    mode, source, show_landmarks, keep_history, pacer_toggle, identity, pulse_method = _sidebar()
    session = _session()
    session.show_landmarks = show_landmarks
    session.ensure_engine(mode, keep_history, identity=identity, pulse_method=pulse_method)
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.subheader("Mirror" + (" · DEMO" if source == "demo" else ""))
        _mirror(session, source, mode)
        _status_fragment(session)
    with right:
        _panels_fragment(session, mode, pacer_toggle)
    with st.expander("Session history", expanded=False):
        _history_fragment(session, keep_history)
