"""Session history the user chooses to keep: numbers only (never frames), in one SQLite file.

Tables::

    sessions(id INTEGER PRIMARY KEY, started_at_s, mode)
    samples(session_id, t_wall_s, heart_rate_bpm, stress_score, drowsiness_probability, perclos,
            blinks_per_min, emotion_label, emotion_valence, emotion_arousal)

``record`` is called from the engine's agent thread every few seconds while a face is present; the page reads
trends and exports CSV. Kiosk mode keeps no history.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SAMPLE_COLUMNS = (
    "heart_rate_bpm",
    "stress_score",
    "drowsiness_probability",
    "perclos",
    "blinks_per_min",
    "emotion_label",
    "emotion_valence",
    "emotion_arousal",
)
NUMERIC_COLUMNS = tuple(c for c in SAMPLE_COLUMNS if c != "emotion_label")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at_s REAL NOT NULL,
    mode TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_wall_s REAL NOT NULL,
    {", ".join(f"{c} {'TEXT' if c == 'emotion_label' else 'REAL'}" for c in SAMPLE_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS samples_session_time ON samples (session_id, t_wall_s);
"""


class HistoryError(RuntimeError):
    """The history file cannot be used (the message names the file and the reason)."""


class HistoryStore:
    """The session-history SQLite file (``path`` as given; opened on first use; safe to share between threads)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as error:
                raise HistoryError(f"history file {str(self.path)!r}: {error}") from error
            self._conn = conn
        return self._conn

    def start_session(self, mode: str, started_at_s: float | None = None) -> int:
        """Open a new session; returns its id."""
        with self._lock:
            try:
                cursor = self._connection().execute(
                    "INSERT INTO sessions (started_at_s, mode) VALUES (?, ?)",
                    (time.time() if started_at_s is None else started_at_s, mode),
                )
            except sqlite3.Error as error:
                raise HistoryError(f"history file {str(self.path)!r}: cannot start a session: {error}") from error
            return int(cursor.lastrowid)

    def record(self, session_id: int, sample: dict[str, Any]) -> None:
        """Add one sample (keys ``t_wall`` and :data:`SAMPLE_COLUMNS`; missing ones stored as NULL)."""
        values = [sample.get(c) for c in SAMPLE_COLUMNS]
        with self._lock:
            try:
                self._connection().execute(
                    f"INSERT INTO samples (session_id, t_wall_s, {', '.join(SAMPLE_COLUMNS)}) "
                    f"VALUES (?, ?, {', '.join('?' * len(SAMPLE_COLUMNS))})",
                    (session_id, float(sample.get("t_wall", time.time())), *values),
                )
            except sqlite3.Error as error:
                raise HistoryError(f"history file {str(self.path)!r}: cannot record: {error}") from error

    def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest sessions with their sample count and mean numbers, oldest first."""
        means = ", ".join(f"AVG(s.{c}) AS {c}" for c in NUMERIC_COLUMNS)
        sql = (
            f"SELECT x.id, x.started_at_s, x.mode, COUNT(s.t_wall_s) AS samples, MAX(s.t_wall_s) AS ended_at_s, "
            f"{means} FROM sessions x LEFT JOIN samples s ON s.session_id = x.id "
            f"GROUP BY x.id ORDER BY x.started_at_s DESC LIMIT ?"
        )
        with self._lock:
            try:
                cursor = self._connection().execute(sql, (int(limit),))
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as error:
                raise HistoryError(f"history file {str(self.path)!r}: cannot read: {error}") from error
        return list(reversed(rows))

    def samples(self, session_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Samples (of one session, or all), oldest first; each with ``session_id`` and ``t_wall_s``."""
        sql = f"SELECT session_id, t_wall_s, {', '.join(SAMPLE_COLUMNS)} FROM samples"
        params: tuple[Any, ...] = ()
        if session_id is not None:
            sql += " WHERE session_id = ?"
            params = (int(session_id),)
        sql += " ORDER BY t_wall_s DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        with self._lock:
            try:
                cursor = self._connection().execute(sql, params)
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as error:
                raise HistoryError(f"history file {str(self.path)!r}: cannot read: {error}") from error
        return list(reversed(rows))

    def to_csv(self, session_id: int | None = None) -> str:
        """Samples as CSV text (header ``session_id,t_wall_s,...``, ISO time column added)."""
        rows = self.samples(session_id)
        out = io.StringIO()
        writer = csv.writer(out)
        header = ["session_id", "time_iso", "t_wall_s", *SAMPLE_COLUMNS]
        writer.writerow(header)
        for row in rows:
            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(row["t_wall_s"]))
            cells = (_cell(row[c]) for c in SAMPLE_COLUMNS)
            writer.writerow([row["session_id"], iso, f"{row['t_wall_s']:.3f}", *cells])
        return out.getvalue()

    def clear(self) -> None:
        """Delete every session and sample."""
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("DELETE FROM samples")
                conn.execute("DELETE FROM sessions")
            except sqlite3.Error as error:
                raise HistoryError(f"history file {str(self.path)!r}: cannot clear: {error}") from error

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
