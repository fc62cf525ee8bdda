"""Frame packets with true timestamps, a bounded thread-safe frame buffer, and frame sources.

Every frame carries ``t``: seconds on the source's own clock (container pts for files, the capture clock for
cameras). Webcams drop frames and vary their rate, so nothing downstream may assume a nominal fps.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.errors import CodedError

log = logging.getLogger(__name__)

#: Largest video file the readers accept, in bytes (a clear error beyond it, never an out-of-memory).
MAX_VIDEO_BYTES = 512 * 1024 * 1024


#: File suffixes read as video clips (dataset folders, batch inputs, the app's video-file picker).
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")

@dataclass(frozen=True)
class FramePacket:
    """One decoded frame.

    Attributes
    ----------
    t : float
        Seconds on the source's clock (pts for files, capture clock for cameras).
    image : ndarray, shape (height, width, 3), uint8
        The frame in BGR order (OpenCV's convention).
    index : int
        Position of the frame in its source (decode order), for logs and ground-truth alignment.
    skin_rgb : ndarray, shape (3,), optional
        Mean R, G, B (0-255) of the lit skin inside ``skin_roi`` measured upstream on the raw frame, before lossy
        encoding (the browser's skin meter, :mod:`smartmirror.ui.skin_meter`); NaN: the meter is on but has no
        colour for this frame. None: the vitals measure ``image`` alone.
    skin_roi : tuple, optional
        (outlines, holes): the (n, 2) pixel polygons ``skin_rgb`` was measured inside.
    """

    t: float
    image: np.ndarray
    index: int = 0
    skin_rgb: np.ndarray | None = None
    skin_roi: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None


class VideoError(CodedError):
    """A video that cannot be read; ``code`` is a stable machine-readable reason."""


class FrameBuffer:
    """A bounded buffer of the newest frames, for one writer and several readers.

    Bounded both by count (``max_frames``) and by age (``max_seconds`` of source time behind the newest packet);
    the oldest packets are dropped first. Readers never block the writer for longer than a list copy.

    Parameters
    ----------
    max_frames : int
        Most packets kept.
    max_seconds : float
        Most source-clock seconds kept behind the newest packet.
    """

    def __init__(self, max_frames: int = 300, max_seconds: float = 12.0):
        self.max_frames = max_frames
        self.max_seconds = max_seconds
        self._packets: deque[tuple[int, FramePacket]] = deque()
        self._lock = threading.Lock()
        self._new_packet = threading.Condition(self._lock)
        self._sequence = 0
        self._closed = False

    def push(self, packet: FramePacket) -> int:
        """Add the newest packet; returns its sequence number (1, 2, ...)."""
        with self._lock:
            self._sequence += 1
            self._packets.append((self._sequence, packet))
            while len(self._packets) > self.max_frames or (
                len(self._packets) > 1 and packet.t - self._packets[0][1].t > self.max_seconds
            ):
                self._packets.popleft()
            self._new_packet.notify_all()
            return self._sequence

    def latest(self) -> FramePacket | None:
        """The newest packet, or None when empty."""
        with self._lock:
            return self._packets[-1][1] if self._packets else None

    def window(self, seconds: float) -> list[FramePacket]:
        """Packets from the last ``seconds`` of source time, oldest first."""
        with self._lock:
            if not self._packets:
                return []
            t_end = self._packets[-1][1].t
            return [p for _, p in self._packets if p.t >= t_end - seconds]

    def since(self, sequence: int) -> list[tuple[int, FramePacket]]:
        """(sequence, packet) pairs newer than ``sequence``, oldest first (those still held)."""
        with self._lock:
            return [(s, p) for s, p in self._packets if s > sequence]

    def wait_for_newer(self, sequence: int, timeout: float | None = None) -> bool:
        """Block until a packet newer than ``sequence`` exists (True) or timeout/close (False)."""
        with self._lock:
            return self._new_packet.wait_for(
                lambda: self._closed or self._sequence > sequence, timeout=timeout
            ) and not self._closed

    def close(self) -> None:
        """Wake all waiting readers; later waits return False at once."""
        with self._lock:
            self._closed = True
            self._new_packet.notify_all()

    @property
    def sequence(self) -> int:
        """Sequence number of the newest packet ever pushed (0 when none)."""
        with self._lock:
            return self._sequence

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)


def _check_video_path(path: Path) -> None:
    if not path.exists():
        raise VideoError("not_found", f"No such file: {path}")
    if not path.is_file():
        raise VideoError("not_a_file", f"Not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise VideoError("empty_file", f"The file is empty: {path.name}")
    if size > MAX_VIDEO_BYTES:
        raise VideoError(
            "file_too_large", f"The file is {size / 2**20:.0f} MB; the limit is {MAX_VIDEO_BYTES / 2**20:.0f} MB"
        )


def read_video_packets(
    path: str | Path,
    *,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    realtime: bool = False,
    loop: bool = False,
) -> Iterator[FramePacket]:
    """Decode a video file into packets timed by the container's presentation timestamps.

    Parameters
    ----------
    path : str or Path
        The video file (any container and codec FFmpeg decodes).
    max_frames, max_seconds : optional
        Stop after this many frames / seconds of source time.
    realtime : bool
        Pace delivery so packets arrive at the rate their timestamps say (for a live-like source).
    loop : bool
        Start again at the end; later loops continue the clock so ``t`` keeps increasing.

    Raises
    ------
    VideoError
        With codes ``not_found``, ``empty_file``, ``file_too_large``, ``not_a_video``, ``no_video_stream``,
        ``corrupt_video`` (nothing decodable) or ``no_frames``.
    """
    import av  # PyAV: container pts, every FFmpeg codec

    path = Path(path)
    _check_video_path(path)
    offset = 0.0
    emitted = 0
    wall_start = time.monotonic()
    while True:
        last_t = None
        frame_step = 1 / 30
        count_this_loop = 0
        try:
            container = av.open(str(path))
        except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise VideoError("not_a_video", f"{path.name} is not a readable video ({exc.__class__.__name__})") from exc
        try:
            if not container.streams.video:
                raise VideoError("no_video_stream", f"{path.name} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame and slice threads: decoding takes the second core
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                frame_step = 1.0 / float(rate)
            try:
                for frame in container.decode(stream):
                    if frame.pts is not None and frame.time_base is not None:
                        t = float(frame.pts * frame.time_base)
                    else:
                        t = (last_t + frame_step) if last_t is not None else 0.0
                    if last_t is not None and t <= last_t:  # broken pts: keep time monotonic
                        t = last_t + frame_step
                    last_t = t
                    packet_t = offset + t
                    if max_seconds is not None and packet_t > max_seconds:
                        return
                    if realtime:
                        delay = packet_t - (time.monotonic() - wall_start)
                        if delay > 0:
                            time.sleep(delay)
                    yield FramePacket(t=packet_t, image=frame.to_ndarray(format="bgr24"), index=emitted)
                    emitted += 1
                    count_this_loop += 1
                    if max_frames is not None and emitted >= max_frames:
                        return
            except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
                if count_this_loop == 0:
                    raise VideoError("corrupt_video", f"{path.name} could not be decoded: {exc}") from exc
                log.warning("%s: decoding stopped early after %d frames: %s", path.name, count_this_loop, exc)
        finally:
            container.close()
        if count_this_loop == 0:
            raise VideoError("no_frames", f"{path.name} contains no decodable video frames")
        if not loop:
            return
        offset += (last_t or 0.0) + frame_step


def camera_packets(index: int = 0, *, width: int = 640, height: int = 480) -> Iterator[FramePacket]:
    """Frames from a local camera (OpenCV), timed by the capture clock (monotonic seconds since opening).

    Raises
    ------
    VideoError
        ``no_camera`` when the device cannot be opened or yields no frame.
    """
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise VideoError("no_camera", f"Camera {index} could not be opened")
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    start = time.monotonic()
    count = 0
    try:
        while True:
            ok, image = capture.read()
            t = time.monotonic() - start
            if not ok:
                if count == 0:
                    raise VideoError("no_camera", f"Camera {index} gave no frame")
                return
            yield FramePacket(t=t, image=image, index=count)
            count += 1
    finally:
        capture.release()


def camera_available(index: int = 0) -> bool:
    """Whether a local camera can be opened and gives a frame."""
    import cv2

    if not Path(f"/dev/video{index}").exists() and not Path("/dev/video0").exists():
        return False
    capture = cv2.VideoCapture(index)
    try:
        return bool(capture.isOpened() and capture.read()[0])
    finally:
        capture.release()


#: Frames decoded ahead of the face tracker.
PREFETCH_FRAMES = 16


class Prefetcher:
    """Run an iterator (a decoder, a tracker) in a daemon thread into a bounded queue; the consumer re-raises its
    exception. :meth:`close` (or the end of iteration) stops the thread and waits for it."""

    _END = object()

    def __init__(self, packets: Iterable[Any], maxsize: int = PREFETCH_FRAMES, *, name: str = "report-decode"):
        self._packets = iter(packets)
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread at its next item and wait for it (so what it uses may be released afterwards)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while True:
                start = time.perf_counter()
                try:
                    packet = next(self._packets)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - start
                if not self._put(packet):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        finally:
            close = getattr(self._packets, "close", None)
            if close is not None:  # a generator: its own clean-up (a nested Prefetcher's thread) runs here
                close()
        self._put(self._END)

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._queue.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()


class SourceClock:
    """Makes a source's timestamps usable: seconds, strictly increasing, across restarts and missing stamps.

    A missing time (None) is replaced by the monotonic wall clock since the first frame; a time that does not
    increase (a looping player, a reconnected camera) continues from the last one.
    """

    def __init__(self, nominal_step_s: float = 1 / 30):
        self.nominal_step_s = nominal_step_s
        self._offset = 0.0
        self._last: float | None = None
        self._wall_start: float | None = None
        self._lock = threading.Lock()

    def __call__(self, t: float | None) -> float:
        with self._lock:
            if self._wall_start is None:
                self._wall_start = time.monotonic()
            if t is None or not math.isfinite(t):
                t = time.monotonic() - self._wall_start
            value = t + self._offset
            if self._last is not None and value <= self._last:
                self._offset += self._last - value + self.nominal_step_s
                value = t + self._offset
            self._last = value
            return value
