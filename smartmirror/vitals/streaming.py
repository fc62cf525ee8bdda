"""A learned pulse network run live: face crops in as they come, with their true timestamps; pulse samples out.

FacePhys is a streaming network (its state-space layers carry a state from frame to frame), so the live vitals
analyzer feeds it each frame's crop once instead of re-running it over the last 30 s every second.
:class:`StreamingPulse` re-times the frames to the network's 30 frames/s by open-rppg's nearest-frame rule on the
frames' own timestamps (the rule :func:`smartmirror.vitals.neural.model_rate_slots` applies to a clip), runs the
ONNX graph on small chunks of model frames with the state carried (:data:`STREAM_CHUNK_FRAMES`: a few frames of
lag for a much lower cost per frame than one frame per call), and hands back one pulse sample per frame that
filled a model slot, at that frame's time. A break in the face run (no face frame for more than ``max_gap_s``)
starts a fresh state, as the clip report starts each segment's batch run fresh, so both give the same pulse
(tests/test_vitals_streaming.py).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from smartmirror.vitals.method_registry import PulseMethod
from smartmirror.vitals.neural import PRETRAINED, has_onnx, load_onnx, validate_frames

#: Model frames per network call when streaming (onnxruntime, one thread, 2 cores: 4.1 ms of CPU per frame one
#: at a time, 3.2 in pairs, 2.4 in fours, 2.0 in eights); four is 133 ms of lag on a reading updated once a second.
STREAM_CHUNK_FRAMES = 4


class StreamingPulse:
    """One face run's pulse from a streaming network, frame by frame.

    Parameters
    ----------
    name : str
        A streamable model of :data:`smartmirror.vitals.neural.PRETRAINED` (one with an ONNX export in weights/).
    chunk_frames : int
        Model frames per network call (:data:`STREAM_CHUNK_FRAMES`).
    max_gap_s : float
        Seconds without a face frame that end the run (the state starts afresh with the next face).
    for_clip : bool
        Use the clip session (:func:`smartmirror.vitals.neural.load_onnx`: no memory-reuse plan, 0.5 s of CPU
        to start instead of 3.4) for a clip report that streams beside its tracking in larger chunks.
    """

    def __init__(self, name: str, chunk_frames: int = STREAM_CHUNK_FRAMES, max_gap_s: float = 0.5,
                 for_clip: bool = False):
        network = load_onnx(name, streaming=not for_clip)
        if network is None:
            raise ValueError(f"{name} cannot stream: it has no ONNX export in weights/")
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames!r}")
        self.network = network
        self.size = PRETRAINED[name].input_size
        self.fps = PRETRAINED[name].fps
        self.chunk_frames = chunk_frames
        self.max_gap_s = max_gap_s
        self.reset()

    def reset(self) -> None:
        """Forget the run: the next crop starts a fresh network state."""
        self.state_: list[np.ndarray] | None = None
        self.run_t0_: float | None = None
        self.last_t_: float | None = None
        self.slots_ = 0                       # model slots filled in this run
        self.pending_: list[np.ndarray] = []  # model frames not yet run
        self.pending_times_: list[float] = []  # per pending model frame: its source frame's time

    def push(self, t: float, crop: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Feed one frame (time ``t`` in seconds, its crop (h, w, 3) RGB uint8, or None without a face).

        Returns the pulse samples finished by this call as ``(times_s, pulse)``, one per source frame that filled
        a model slot, at that frame's time (empty arrays while a chunk fills up). Frames must come in time order.
        """
        finished = []
        if crop is None:
            return _samples(finished)
        if self.last_t_ is not None and t - self.last_t_ > self.max_gap_s:
            finished += self._run_pending()
            self.reset()
        if self.run_t0_ is None:
            self.run_t0_ = t
        self.last_t_ = t
        frame = validate_frames(crop[None], self.size)[0]
        due = int(np.floor((t - self.run_t0_) * self.fps + 0.3 + 1e-9)) + 1  # slots j with (j - 0.3) / fps <= t
        for _ in range(due - self.slots_):  # a slower source repeats its frame, a faster one skips some
            self.pending_.append(frame)
            self.pending_times_.append(t)
        self.slots_ = max(self.slots_, due)
        if len(self.pending_) >= self.chunk_frames:
            finished += self._run_pending()
        return _samples(finished)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Run the frames still waiting for a full chunk (the end of a clip)."""
        return _samples(self._run_pending())

    def _run_pending(self) -> list[tuple[float, float]]:
        if not self.pending_:
            return []
        pulse, self.state_ = self.network.step(np.stack(self.pending_), self.state_)
        times = self.pending_times_
        self.pending_, self.pending_times_ = [], []
        # a repeated frame filled several slots: its sample is the last of them (the slot nearest its time)
        return [(t, float(v)) for k, (t, v) in enumerate(zip(times, pulse, strict=True))
                if k + 1 == len(times) or times[k + 1] != t]


class LivePulse:
    """The live analyzer's streamed pulse: a :class:`StreamingPulse` and its last ``keep_s`` seconds of samples.

    :meth:`push` and :meth:`flush` run on the analyzer's thread; :meth:`samples` may be called from another one.
    ``chunk_frames`` and ``for_clip``: see :class:`StreamingPulse`. With ``background`` the network runs on a
    worker thread of its own (the crops queue for it in order, at most ``max_queued`` frames, then :meth:`push`
    waits), so a clip report's analyzer thread measures the next frames while a chunk runs (onnxruntime releases
    the GIL); :meth:`flush` waits for the worker and raises what it raised. The samples are the same either way.
    """

    def __init__(self, name: str, keep_s: float, max_gap_s: float = 0.5, *,
                 chunk_frames: int = STREAM_CHUNK_FRAMES, for_clip: bool = False, background: bool = False,
                 max_queued: int = 256):
        self.stream = StreamingPulse(name, chunk_frames=chunk_frames, max_gap_s=max_gap_s, for_clip=for_clip)
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self._values: deque[float] = deque()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="pulse-network") if background else None
        self._max_queued = max_queued
        self._jobs: deque[Future] = deque()  # the worker's, oldest first (it runs them in this order)

    @property
    def background(self) -> bool:
        """Whether the network runs on a worker thread (until :meth:`flush`)."""
        return self._worker is not None

    def push(self, t: float, crop: np.ndarray | None) -> None:
        """Feed one frame's crop (None without a face) at time ``t`` (s); keeps the samples it finishes."""
        if self._worker is None:
            self._push_now(t, crop)
            return
        # finished jobs (a failure in the worker surfaces here, not at the end), then the oldest while the queue is full
        while self._jobs and (self._jobs[0].done() or len(self._jobs) >= self._max_queued):
            self._jobs.popleft().result()
        self._jobs.append(self._worker.submit(self._push_now, t, crop))

    def drain(self) -> None:
        """Wait until the worker has taken every crop pushed so far (at once without ``background``); raises what
        it raised."""
        while self._jobs:
            self._jobs.popleft().result()

    def flush(self) -> None:
        """Run the frames still waiting for a full chunk and keep their samples (the end of a clip); the worker
        thread ends (later pushes run on the caller's thread)."""
        if self._worker is not None:
            try:
                self.drain()
            finally:
                self._worker.shutdown(wait=True, cancel_futures=True)
                self._worker = None
        times, values = self.stream.flush()
        if len(times):
            self._keep(float(times[-1]), times, values)

    def _push_now(self, t: float, crop: np.ndarray | None) -> None:
        self._keep(t, *self.stream.push(t, crop))

    def _keep(self, t: float, times: np.ndarray, values: np.ndarray) -> None:
        with self._lock:
            self._times.extend(times.tolist())
            self._values.extend(values.tolist())
            while self._times and t - self._times[0] > self.keep_s:
                self._times.popleft()
                self._values.popleft()

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples held: times (s, ascending) and pulse values (a copy)."""
        with self._lock:
            return np.array(self._times, dtype=np.float64), np.array(self._values, dtype=np.float64)


def _samples(pairs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        return np.zeros(0), np.zeros(0)
    times, values = zip(*pairs, strict=True)
    return np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)


def can_stream(method: PulseMethod) -> bool:
    """Whether ``method`` can run live frame by frame (a learned model with an ONNX export in weights/)."""
    cfg = PRETRAINED.get(method.name)
    return method.kind == "frames" and cfg is not None and has_onnx(cfg.name)
