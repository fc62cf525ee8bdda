"""Prometheus metrics of the API (one registry per app, so tests can build fresh apps)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0)
ANALYZER_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class _SessionCollector:
    """Reads session counts from the store at scrape time."""

    def __init__(self, read: Callable[[], tuple[int, int, int, int]]):
        self.read = read

    def collect(self):
        active, maximum, created, expired = self.read()
        yield GaugeMetricFamily("smartmirror_sessions_active", "Open sessions", value=active)
        yield GaugeMetricFamily("smartmirror_sessions_max", "Most sessions allowed", value=maximum)
        yield CounterMetricFamily("smartmirror_sessions_created", "Sessions created", value=created)
        yield CounterMetricFamily("smartmirror_sessions_expired", "Sessions expired after inactivity", value=expired)


class ApiMetrics:
    """Requests, latencies, sessions, frames and analyzer timings."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "smartmirror_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "smartmirror_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.in_flight = Gauge("smartmirror_http_requests_in_flight", "Requests being answered",
                               registry=self.registry)
        self.frames = Counter(
            "smartmirror_frames", "Frames analysed, by outcome (face, no_face, multiple_faces)", ["outcome"],
            registry=self.registry,
        )
        self.analyzer_seconds = Histogram(
            "smartmirror_analyzer_seconds", "Per-frame time of the face tracker and each analyzer", ["analyzer"],
            buckets=ANALYZER_BUCKETS_S, registry=self.registry,
        )
        self.video_analyses = Counter(
            "smartmirror_video_analyses", "Clip analyses, by outcome (ok or an error code)", ["outcome"],
            registry=self.registry,
        )
        self.video_seconds = Histogram(
            "smartmirror_video_analysis_seconds", "Time to analyse an uploaded clip", buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )

    def watch_sessions(self, read: Callable[[], tuple[int, int, int, int]]) -> None:
        """Register ``read() -> (active, max, created_total, expired_total)`` for scrapes."""
        self.registry.register(_SessionCollector(read))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_frame(self, outcome: str, timings_s: dict[str, float]) -> None:
        self.frames.labels(outcome).inc()
        for name, seconds in timings_s.items():
            self.analyzer_seconds.labels(name).observe(seconds)

    def frames_total(self) -> int:
        return int(sum(sample.value for metric in self.frames.collect() for sample in metric.samples
                       if sample.name.endswith("_total")))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
