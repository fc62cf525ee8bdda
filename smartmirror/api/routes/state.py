"""What the API shares between requests: settings, session store, metrics, the clip workers and a temp folder."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from fastapi import Request

from smartmirror.api.routes.metrics import ApiMetrics
from smartmirror.api.routes.uploads import UploadArea
from smartmirror.api.session_store import SessionStore
from smartmirror.api.sessions import session_specs
from smartmirror.api.settings import ApiSettings
from smartmirror.emotion import predict_face
from smartmirror.face import FaceTracker
from smartmirror.pipeline import Pipeline

log = logging.getLogger(__name__)


def package_version() -> str:
    try:
        return importlib.metadata.version("smartmirror")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass
class ApiState:
    """Created in the app's lifespan (``app.state.api``) and closed at shutdown."""

    settings: ApiSettings
    metrics: ApiMetrics
    store: SessionStore
    uploads: UploadArea
    video_workers: ThreadPoolExecutor
    video_slots: threading.BoundedSemaphore
    photo_tracker: FaceTracker                       # static-image mode, for one-off images without a session
    analyzers: dict[str, bool]
    version: str = field(default_factory=package_version)
    started_s: float = field(default_factory=time.monotonic)
    videos_running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, settings: ApiSettings, metrics: ApiMetrics) -> ApiState:
        """Build the shared parts and load MediaPipe (and any analyzer weights) once, before the first request.

        Raises
        ------
        OSError
            When the private upload folder cannot be made.
        """
        store = SessionStore(settings)
        metrics.watch_sessions(
            lambda: (len(store), settings.max_sessions, store.created_total, store.expired_total)
        )
        state = cls(
            settings=settings,
            metrics=metrics,
            store=store,
            uploads=UploadArea.create(),  # sweeps folders left by a server that was killed
            video_workers=ThreadPoolExecutor(max_workers=settings.max_concurrent_videos,
                                             thread_name_prefix="smartmirror-clip"),
            video_slots=threading.BoundedSemaphore(settings.max_concurrent_videos),
            photo_tracker=FaceTracker(static_image_mode=True),
            analyzers={},
        )
        state.warm_up()
        return state

    def warm_up(self) -> None:
        """Load MediaPipe's graphs and the analyzers' weights so the first session does not pay for them."""
        start = time.perf_counter()
        self.photo_tracker.process(np.zeros((64, 64, 3), dtype=np.uint8))
        warm = Pipeline(session_specs(), tracker=self.photo_tracker).start()  # a broken one: unavailable
        self.analyzers.update({name: runner.available for name, runner in warm.runners.items()})
        warm.close()
        if self.analyzers.get("emotion"):
            try:  # loads the shared emotion model (the analyzers load it lazily on their first face)
                predict_face(np.full((64, 64), 128, dtype=np.uint8))
            except Exception:
                log.exception("loading the emotion model failed at start-up")
        log.info("API warm-up took %.1f s; analyzers installed: %s", time.perf_counter() - start, self.analyzers)

    def stop(self) -> None:
        """Close sessions, wait for running clip analyses, remove the upload folder."""
        self.store.close_all()
        self.video_workers.shutdown(wait=True, cancel_futures=True)
        self.photo_tracker.close()
        self.uploads.close()

    def uptime_s(self) -> float:
        return time.monotonic() - self.started_s

    def video_started(self) -> None:
        with self._lock:
            self.videos_running += 1

    def video_finished(self) -> None:
        with self._lock:
            self.videos_running -= 1


def process_rss_mb() -> float | None:
    """Resident memory of this process in MB (``VmRSS`` from /proc/self/status), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def api_state(request: Request) -> ApiState:
    """FastAPI dependency: the app's shared state."""
    return request.app.state.api


def cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
