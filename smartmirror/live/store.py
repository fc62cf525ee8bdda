"""The latest-state store the live page reads: one immutable entry per part, with its status and timestamps.

Parts are the face tracker (``face``), each analyzer, and the agent. The engine's threads write; the page, the
agent thread and the history recorder read snapshots. :class:`RateMeter` measures the frame rates shown beside it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

STATUS_STARTING = "starting"
STATUS_OK = "ok"
STATUS_UNAVAILABLE = "unavailable"



@dataclass(frozen=True)
class StateEntry:
    """The latest state of one part (an analyzer, the face tracker, the agent).

    Attributes
    ----------
    name : str
        The part's name ("vitals", "emotion", "fatigue", "face", "agent", ...).
    status : str
        "starting", "ok" or "unavailable".
    state : dict or None
        The part's latest JSON-able state (kept from before a failure, for context).
    source_t : float or None
        Source-clock seconds of the frame the state comes from.
    updated_at : float
        Wall-clock seconds (``time.time()``) of the last change.
    error : str or None
        Why the part is unavailable.
    """

    name: str
    status: str
    state: dict[str, Any] | None = None
    source_t: float | None = None
    updated_at: float = 0.0
    error: str | None = None

    def age_s(self, now: float | None = None) -> float:
        """Wall-clock seconds since the last change."""
        return (time.time() if now is None else now) - self.updated_at


class StateStore:
    """Thread-safe latest value per part, with timestamps. Readers get immutable snapshots."""

    def __init__(self) -> None:
        self._entries: dict[str, StateEntry] = {}
        self._lock = threading.Lock()
        self._version = 0

    def set_starting(self, name: str) -> None:
        """Register a part that has not produced anything yet."""
        with self._lock:
            self._entries[name] = StateEntry(name, STATUS_STARTING, updated_at=time.time())
            self._version += 1

    def put(self, name: str, state: dict[str, Any] | None, *, source_t: float | None = None) -> None:
        """Record the latest state of ``name`` (status "ok")."""
        with self._lock:
            self._entries[name] = StateEntry(name, STATUS_OK, state, source_t, time.time())
            self._version += 1

    def mark_unavailable(self, name: str, error: str) -> None:
        """Mark ``name`` unavailable with a short reason (its last state is kept)."""
        with self._lock:
            old = self._entries.get(name)
            self._entries[name] = StateEntry(
                name,
                STATUS_UNAVAILABLE,
                old.state if old else None,
                old.source_t if old else None,
                time.time(),
                error,
            )
            self._version += 1

    def get(self, name: str) -> StateEntry | None:
        """The entry of ``name`` or None."""
        with self._lock:
            return self._entries.get(name)

    def state(self, name: str) -> dict[str, Any] | None:
        """The latest state of ``name`` when it is "ok", else None."""
        entry = self.get(name)
        return entry.state if entry is not None and entry.status == STATUS_OK else None

    def snapshot(self) -> dict[str, StateEntry]:
        """All entries (a shallow copy; entries are immutable)."""
        with self._lock:
            return dict(self._entries)

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Forget every state except the names in ``keep`` (their entries return to "starting")."""
        with self._lock:
            now = time.time()
            self._entries = {
                name: StateEntry(name, STATUS_STARTING, updated_at=now) for name in self._entries if name in keep
            }
            self._version += 1

    @property
    def version(self) -> int:
        """Increments on every change (cheap change detection for the UI)."""
        with self._lock:
            return self._version


class RateMeter:
    """Events per second over the last ``window`` events (wall clock), thread-safe."""

    def __init__(self, window: int = 60):
        self._times: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        """Events per second; 0 when fewer than two events or the newest is older than 2 s."""
        with self._lock:
            if len(self._times) < 2:
                return 0.0
            now = time.monotonic() if now is None else now
            if now - self._times[-1] > 2.0:
                return 0.0
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0


