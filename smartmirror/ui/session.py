"""One browser session's live objects: the engine, the video callback, server-side source tracks, history.

Kept in ``st.session_state`` so they survive Streamlit reruns. The video callback is a bound method of
:class:`MirrorSession`; it runs on streamlit-webrtc's worker thread, never calls ``st.*`` and never waits on a
model: it timestamps the frame (``frame.time``, the source clock), hands it to the engine and draws the newest
overlay. The page registers the queued form (:meth:`MirrorSession.queued_video_frames_callback`): when the
worker thread was late, every frame that piled up still reaches the engine, only the newest is drawn.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import av
import cv2
import numpy as np

from smartmirror.agent import AgentStore, InterventionAgent
from smartmirror.fatigue.state import FatigueState
from smartmirror.frames import FramePacket
from smartmirror.live.engine import Engine, default_specs
from smartmirror.paths import user_data_dir
from smartmirror.ui.frame_tag import split_frame_tag, tag_rows_in
from smartmirror.ui.history import HistoryError, HistoryStore
from smartmirror.ui.overlay import mirror_view
from smartmirror.ui.skin_meter import MeterMask, SkinMeterMasks
from smartmirror.ui.sources import PacketVideoTrack

log = logging.getLogger(__name__)

#: After a tagged frame, untagged ones (a strip the encoder garbled) get no colour for this long, so the pulse
#: never mixes the meter's raw colour with the encoded picture's (seconds).
METER_HOLD_S = 3.0


def _stop_engine(engine: Engine | None) -> None:
    if engine is not None:
        engine.stop(timeout_s=2.0)


def received_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A received WebRTC frame as BGR uint8: an I420 frame (VP8's) by OpenCV's BT.601 studio-range conversion,
    the integers the browser's skin meter computes on the raw frame (``skin_meter_core.js``); anything else by
    PyAV."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


class MirrorSession:
    """The live part of one page session.

    Attributes set from the page (plain values, read by the callback thread): ``show_landmarks``, ``demo``.
    """

    def __init__(self, *, engine_factory: Callable[..., Engine] | None = None):
        self.engine_factory = engine_factory or make_engine
        self.engine: Engine | None = None
        self.mode: str | None = None
        self.keep_history: bool | None = None
        self.identity = False
        self.pulse_method: str | None = None
        self.show_landmarks = True
        self.demo = False
        self.callback_ms: deque[float] = deque(maxlen=300)
        self.meter_masks = SkinMeterMasks()
        self.meter_frames = 0  # frames that came with the browser meter's tag
        self._meter_seen: tuple[float, int] | None = None  # (monotonic time, frame height) of the last tagged frame
        self._tracks: dict[str, PacketVideoTrack] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop_engine, None)

    # --- engine -------------------------------------------------------------------------------------------------

    def ensure_engine(
        self, mode: str, keep_history: bool, *, identity: bool = False, pulse_method: str | None = None
    ) -> Engine:
        """The running engine for ``mode``; a new one (fresh analyzers and agent) when the mode, the history
        choice, the age/gender opt-in or the pulse method changed."""
        with self._lock:
            wanted = (mode, keep_history, identity, pulse_method)
            if self.engine is None or wanted != (self.mode, self.keep_history, self.identity, self.pulse_method):
                old = self.engine
                options = {k: v for k, v in (("identity", identity), ("pulse_method", pulse_method)) if v}
                self.engine = self.engine_factory(mode, keep_history, **options).start()  # opt-ins only when asked
                self.mode = mode
                self.keep_history = keep_history
                self.identity = identity
                self.pulse_method = pulse_method
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _stop_engine, self.engine)
                if old is not None:
                    threading.Thread(target=old.stop, name="smartmirror-engine-stop", daemon=True).start()
            return self.engine

    def close(self) -> None:
        """Stop the engine and the server-side tracks."""
        with self._lock:
            for track in self._tracks.values():
                track.stop()
            self._tracks.clear()
            if self.engine is not None:
                self.engine.stop()
                self.engine = None

    # --- the video callback -------------------------------------------------------------------------------------

    def packet(self, frame: av.VideoFrame) -> FramePacket:
        """The frame as a packet: its source time, the picture without the skin meter's strip, and the meter's
        colour when the browser sent one (:mod:`smartmirror.ui.skin_meter`)."""
        image = received_bgr(frame)
        picture, tag = split_frame_tag(image)
        if tag is not None:
            self._meter_seen = (time.monotonic(), image.shape[0])
            self.meter_frames += 1
            mask = self.meter_masks.mask(tag.mask_version)
            roi = None if mask is None else ((mask.outline,), mask.holes)
            return FramePacket(t=frame.time, image=picture, skin_rgb=tag.skin_rgb, skin_roi=roi)
        if self.meter_active():  # the meter is on and this frame's tag was lost
            if image.shape[0] == self._meter_seen[1]:  # the strip is still there, unreadable
                image = image[: image.shape[0] - tag_rows_in(image.shape[0])]
            return FramePacket(t=frame.time, image=image, skin_rgb=np.full(3, np.nan))
        return FramePacket(t=frame.time, image=image)

    def meter_active(self) -> bool:
        """Whether the browser's skin meter tagged a frame in the last ``METER_HOLD_S`` seconds."""
        seen = self._meter_seen
        return seen is not None and time.monotonic() - seen[0] < METER_HOLD_S

    def meter_mask(self) -> MeterMask | None:
        """The skin mask the browser's meter should use now (from the tracker's newest face)."""
        engine = self.engine
        overlay = None if engine is None else engine.overlay()
        if overlay is None:
            return self.meter_masks.update(None, (0, 0))
        return self.meter_masks.update(overlay.landmarks_xy, overlay.image_size)

    def video_frame_callback(self, frame: av.VideoFrame) -> av.VideoFrame:
        """streamlit-webrtc's callback: submit the frame with its source time, return the mirror with overlay."""
        start = time.perf_counter()
        packet = self.packet(frame)
        image = packet.image
        engine = self.engine
        lines: tuple[str, ...] = ()
        overlay = None
        if engine is not None:
            engine.submit(packet)
            overlay = engine.overlay()
            lines = (f"{engine.delivered_fps.rate():.0f} fps shown | {engine.tracked_fps.rate():.0f} fps analysed",)
            alert = _driver_alert(engine)
            if alert:
                lines += (alert,)
        view = mirror_view(image, overlay, show_landmarks=self.show_landmarks, show_regions=self.show_landmarks,
                           lines=lines, demo=self.demo)
        out = av.VideoFrame.from_ndarray(view, format="bgr24")
        self.callback_ms.append((time.perf_counter() - start) * 1000.0)
        return out

    async def queued_video_frames_callback(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc's queued callback: every frame that arrived since the last call reaches the engine
        (the vitals need each one's colour; the plain callback only sees the newest when the machine stalls),
        and the newest is returned as the mirror with its overlay."""
        engine = self.engine
        if engine is not None:
            for frame in frames[:-1]:
                engine.submit(self.packet(frame))
        return [self.video_frame_callback(frames[-1])] if frames else []

    def callback_p95_ms(self) -> float | None:
        """95th percentile of the callback's own time over the last 300 frames (milliseconds)."""
        values = list(self.callback_ms)
        return float(np.percentile(values, 95)) if values else None

    # --- server-side sources ------------------------------------------------------------------------------------

    def track(self, key: str, packets_factory: Callable[[], Iterator[FramePacket]]) -> PacketVideoTrack:
        """The server-side track for source ``key``, made once (a new one after the old one ended)."""
        with self._lock:
            track = self._tracks.get(key)
            if track is None or track.readyState != "live":
                for old_key in [k for k in self._tracks if k != key]:
                    self._tracks.pop(old_key).stop()
                track = PacketVideoTrack(packets_factory, name=key.split(":")[0])
                self._tracks[key] = track
            return track

    def track_error(self, key: str) -> str | None:
        """Why the server-side track for ``key`` ended, if it did."""
        track = self._tracks.get(key)
        return None if track is None else track.error


def _driver_alert(engine: Engine) -> str | None:
    if engine.mode != "driver":
        return None
    fatigue: FatigueState | None = engine.store.state("fatigue")
    if fatigue is None:
        return None
    if fatigue.microsleep:
        return "ALERT: microsleep - pull over and rest"
    if fatigue.alert:
        return "ALERT: drowsy - take a break"
    return None


def make_engine(mode: str, keep_history: bool, identity: bool = False, pulse_method: str | None = None) -> Engine:
    """The app's engine: the default analyzers (age/gender only when ``identity``), the intervention agent,
    and the history recorder.

    Kiosk mode and ``keep_history=False`` keep nothing on disk (the agent learns in memory only).
    """
    persist = keep_history and mode != "kiosk"
    data_dir = user_data_dir() if persist else None

    def agent_factory() -> Any:
        store = AgentStore(data_dir / "agent.sqlite3") if data_dir is not None else None
        return InterventionAgent(mode=mode, seed=0, store=store)

    on_sample = None
    if data_dir is not None:
        recorder = HistoryRecorder(HistoryStore(data_dir / "history.sqlite3"), mode)
        on_sample = recorder.record
    specs = default_specs(mode, identity=identity, pulse_method=pulse_method)
    return Engine(specs, mode=mode, agent_factory=agent_factory,
                  on_sample=on_sample)


class HistoryRecorder:
    """Starts a history session at the first sample and records every sample after it (errors logged once)."""

    def __init__(self, store: HistoryStore, mode: str):
        self.store = store
        self.mode = mode
        self.session_id: int | None = None
        self.error: str | None = None

    def record(self, sample: dict[str, Any]) -> None:
        if self.error is not None:
            return
        try:
            if self.session_id is None:
                self.session_id = self.store.start_session(self.mode, sample.get("t_wall"))
            self.store.record(self.session_id, sample)
        except HistoryError as error:
            self.error = str(error)
            log.warning("session history disabled: %s", error)
