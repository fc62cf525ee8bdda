"""Video sources for the browser mirror and the WebRTC configuration.

- Browser webcam: streamlit-webrtc's SENDRECV mode (the browser sends its camera, we send back the mirror).
- Server-side sources (the bundled demo clip, a local camera, a video file): a :class:`PacketVideoTrack` that
  plays :class:`~smartmirror.frames.FramePacket` s in real time (RECVONLY mode, through the same video callback).
  Its frames carry the packets' own times as pts, so the engine sees the source clock, across loops too.

Files from this computer are only those the user picks in the upload widget, or video files directly inside the
folder ``SMARTMIRROR_VIDEO_DIR`` names (:func:`folder_videos`): the page has no free path field, so it can neither
open ``/etc/passwd`` nor tell whether some file exists.

``rtc_configuration()`` has no ICE servers unless ``SMARTMIRROR_ICE_SERVERS`` says otherwise (a JSON list of
RTCIceServer dicts, e.g. ``[{"urls": ["stun:stun.example.org:3478"]}]`` or a TURN server with username and
credential), so a localhost session never contacts a public STUN server.
"""

from __future__ import annotations

import asyncio
import fractions
import io
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from smartmirror.frames import VIDEO_SUFFIXES, FramePacket, VideoError

log = logging.getLogger(__name__)

ICE_SERVERS_ENV = "SMARTMIRROR_ICE_SERVERS"
VIDEO_DIR_ENV = "SMARTMIRROR_VIDEO_DIR"
#: File name endings of the videos the page offers (the upload widget takes the same).
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


class ConfigError(ValueError):
    """A setting in the environment that cannot be used (the message says which and why)."""


def ice_servers_from_env(environ: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """ICE servers from ``SMARTMIRROR_ICE_SERVERS`` (JSON list of ``{"urls": ..., "username"?, "credential"?}``).

    Empty or unset: no ICE servers (offline localhost). Raises :class:`ConfigError` for malformed JSON.
    """
    raw = (os.environ if environ is None else environ).get(ICE_SERVERS_ENV, "").strip()
    if not raw:
        return []
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{ICE_SERVERS_ENV} is not valid JSON: {error}") from None
    if isinstance(servers, dict):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ConfigError(f'{ICE_SERVERS_ENV} must be a JSON list of objects with "urls", got {raw[:80]!r}')
    allowed = {"urls", "username", "credential"}
    return [{k: v for k, v in server.items() if k in allowed} for server in servers]


def video_folder(environ: dict[str, str] | None = None) -> Path | None:
    """The folder ``SMARTMIRROR_VIDEO_DIR`` names (resolved), or None when unset.

    Raises :class:`ConfigError` when it is set but is not a folder.
    """
    raw = (os.environ if environ is None else environ).get(VIDEO_DIR_ENV, "").strip()
    if not raw:
        return None
    folder = Path(raw).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"{VIDEO_DIR_ENV}={raw!r} is not a folder")
    return folder


def folder_videos(folder: Path) -> list[str]:
    """Names of the video files directly inside ``folder`` (sorted; hidden files, links leading out of the
    folder and other file types are left out)."""
    names = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith(".") or entry.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        try:
            resolved = entry.resolve(strict=True)
        except OSError:
            continue
        if resolved.parent == folder and resolved.is_file():
            names.append(entry.name)
    return sorted(names)


def folder_video(folder: Path, name: str) -> Path:
    """The path of ``name`` when it is one of :func:`folder_videos`; ``ValueError`` otherwise."""
    if name not in folder_videos(folder):
        raise ValueError(f"{name!r} is not a video in {folder}")
    return folder / name


def rtc_configuration(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """streamlit-webrtc's ``rtc_configuration``: always an explicit ``iceServers`` list (empty by default)."""
    return {"iceServers": ice_servers_from_env(environ)}


class PacketVideoTrack(MediaStreamTrack):
    """An aiortc video track that plays frame packets at the pace of their timestamps.

    Parameters
    ----------
    packets_factory : callable
        Returns the packet iterator; called on a reader thread at the first ``recv`` (decoding stays off the
        event loop). A :class:`~smartmirror.frames.VideoError` it raises ends the track; ``error`` keeps it.
    name : str
        For logs.
    """

    kind = "video"

    def __init__(self, packets_factory: Callable[[], Iterator[FramePacket]], *, name: str = "source"):
        super().__init__()
        self.packets_factory = packets_factory
        self.name = name
        self.error: str | None = None
        self._queue: queue.Queue[FramePacket | None] = queue.Queue(maxsize=4)
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock_offset: float | None = None  # wall - source time of the first frame

    def _start_reader(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name=f"smartmirror-source-{self.name}", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        try:
            for packet in self.packets_factory():
                while not self._quit.is_set():
                    try:
                        self._queue.put(packet, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._quit.is_set():
                    return
        except VideoError as error:
            self.error = error.message
            log.warning("video source %s: %s", self.name, error.message)
        except Exception as error:  # noqa: BLE001 - shown to the user, never a traceback
            self.error = f"{type(error).__name__}: {error}"
            log.exception("video source %s failed", self.name)
        while not self._quit.is_set():  # end of stream marker
            try:
                self._queue.put(None, timeout=0.2)
                return
            except queue.Full:
                continue

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._start_reader()
        packet = None
        while packet is None:
            try:
                packet = self._queue.get_nowait()
            except queue.Empty:
                if self.readyState != "live":
                    raise MediaStreamError from None
                await asyncio.sleep(0.004)
                continue
            if packet is None:
                self.stop()
                raise MediaStreamError
        now = time.monotonic()
        if self._clock_offset is None or now - (self._clock_offset + packet.t) > 0.5:
            self._clock_offset = now - packet.t  # (re)anchor: first frame, or the reader fell behind
        wait = self._clock_offset + packet.t - now
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(packet.image, format="bgr24")
        frame.pts = int(round(packet.t / VIDEO_TIME_BASE))
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def stop(self) -> None:
        self._quit.set()
        super().stop()


def bytes_packets(data: bytes, *, loop: bool = True, name: str = "upload") -> Iterator[FramePacket]:
    """Decode an in-memory video (an upload; never written to disk), timed by pts, looped with a rising clock.

    Raises
    ------
    VideoError
        ``not_a_video``, ``no_video_stream`` or ``no_frames``.
    """
    offset = 0.0
    index = 0
    while True:
        try:
            container = av.open(io.BytesIO(data))
        except (av.error.FFmpegError, ValueError) as error:
            raise VideoError("not_a_video", f"{name} is not a readable video ({type(error).__name__})") from None
        count = 0
        last_t = 0.0
        step = 1 / 30
        try:
            if not container.streams.video:
                raise VideoError("no_video_stream", f"{name} has no video stream")
            stream = container.streams.video[0]
            if stream.average_rate:
                step = 1.0 / float(stream.average_rate)
            try:
                for frame in container.decode(stream):
                    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                    t = last_t + step if t is None or (count and t <= last_t) else t
                    last_t = t
                    yield FramePacket(t=offset + t, image=frame.to_ndarray(format="bgr24"), index=index)
                    index += 1
                    count += 1
            except av.error.FFmpegError as error:
                if count == 0:
                    raise VideoError("corrupt_video", f"{name} could not be decoded") from error
        finally:
            container.close()
        if count == 0:
            raise VideoError("no_frames", f"{name} contains no decodable video frames")
        if not loop:
            return
        offset += last_t + step
