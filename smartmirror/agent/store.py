"""SQLite persistence for the agent: per-profile learned state and the suggestion/feedback history.

One file (default ``agent.sqlite3`` in ``smartmirror.paths.user_data_dir()``), WAL journal, so a process
killed in the middle of a write leaves the last committed state intact; ``synchronous=NORMAL`` (an OS crash or
power loss may lose the last few commits, never corrupt the file). Each suggestion or feedback is one
transaction that writes the state and the history row together.

Tables::

    agent_state(profile PRIMARY KEY, state_json, updated_at_s)
    history(id PRIMARY KEY, profile, action, source, mode, created_at_s, context_json, features_json,
            expected_reward, reward, feedback_at_s)          -- reward/feedback_at_s NULL until feedback

Every sqlite/OS/JSON failure is raised as :class:`StoreError` with the path and the reason; the agent turns that
into a logged warning and carries on in memory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Self

SCHEMA_VERSION = 1
DEFAULT_FILENAME = "agent.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_state (
    profile TEXT PRIMARY KEY,
    state_json TEXT NOT NULL,
    updated_at_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    context_json TEXT NOT NULL,
    features_json TEXT NOT NULL,
    expected_reward REAL,
    reward REAL,
    feedback_at_s REAL
);
CREATE INDEX IF NOT EXISTS history_profile_time ON history (profile, created_at_s);
"""

_HISTORY_COLUMNS = (
    "id",
    "profile",
    "action",
    "source",
    "mode",
    "created_at_s",
    "context_json",
    "features_json",
    "expected_reward",
    "reward",
    "feedback_at_s",
)


class StoreError(RuntimeError):
    """The agent database cannot be used (corrupt, locked, unreadable, or from a newer version)."""


class AgentStore:
    """The agent's SQLite file. ``path`` is stored as given; the file is opened on first use (or :meth:`open`).

    ``timeout_s`` is how long to wait for another process's lock before giving up with :class:`StoreError`.
    Safe to share between threads (one connection behind a lock).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 2.0):
        self.path = path
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @classmethod
    def default(cls, *, timeout_s: float = 2.0) -> AgentStore:
        """The store in the user's data folder (``smartmirror.paths.user_data_dir()``: platformdirs'
        ``user_data_dir("smartmirror")``, or ``$SMARTMIRROR_DATA_DIR``)."""
        from smartmirror.paths import user_data_dir

        return cls(user_data_dir() / DEFAULT_FILENAME, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"AgentStore({str(self.path)!r})"

    def _fail(self, doing: str, error: BaseException) -> StoreError:
        return StoreError(f"agent database {str(self.path)!r}: cannot {doing}: {error}")

    def open(self) -> Self:
        """Open (creating if needed) and check the database. Raises :class:`StoreError`."""
        with self._lock:
            if self._conn is not None:
                return self
            path = Path(self.path)
            conn = None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
                journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(journal).lower() != "wal":
                    raise sqlite3.OperationalError(f"could not switch to WAL journal (got {journal!r})")
                conn.execute("PRAGMA synchronous=NORMAL")
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {check}")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"schema version {version} is newer than this SmartMirror's")
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            except (sqlite3.Error, OSError) as error:
                if conn is not None:
                    conn.close()
                raise self._fail("open it", error) from error
            self._conn = conn
            return self

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        self.open()
        assert self._conn is not None
        return self._conn

    def _write(self, doing: str, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``statements`` in one transaction."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        conn.execute(sql, params)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self._fail(doing, error) from error

    def load_state(self, profile: str) -> dict[str, Any] | None:
        """The saved state of ``profile``, or None when it has none."""
        with self._lock:
            try:
                row = (
                    self._connection()
                    .execute("SELECT state_json FROM agent_state WHERE profile = ?", (profile,))
                    .fetchone()
                )
                return None if row is None else json.loads(row[0])
            except (sqlite3.Error, ValueError) as error:
                raise self._fail(f"read the state of profile {profile!r}", error) from error

    def save(
        self,
        profile: str,
        state: dict[str, Any],
        *,
        suggestion: dict[str, Any] | None = None,
        feedback: tuple[str, float, float] | None = None,
    ) -> None:
        """Save ``state`` and, in the same transaction, a new history row (``suggestion``: a dict with the
        history columns) or a feedback ``(suggestion_id, reward, feedback_at_s)``."""
        statements = [
            (
                "INSERT INTO agent_state (profile, state_json, updated_at_s) VALUES (?, ?, ?) "
                "ON CONFLICT(profile) DO UPDATE SET state_json = excluded.state_json, "
                "updated_at_s = excluded.updated_at_s",
                (profile, json.dumps(state), time.time()),
            )
        ]
        if suggestion is not None:
            row = {**suggestion, "profile": profile, "reward": None, "feedback_at_s": None}
            row["context_json"] = json.dumps(row.pop("context"))
            row["features_json"] = json.dumps(list(row.pop("features")))
            statements.append(
                (
                    f"INSERT INTO history ({', '.join(_HISTORY_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_HISTORY_COLUMNS))})",
                    tuple(row[c] for c in _HISTORY_COLUMNS),
                )
            )
        if feedback is not None:
            suggestion_id, reward, feedback_at_s = feedback
            statements.append(
                (
                    "UPDATE history SET reward = ?, feedback_at_s = ? WHERE id = ? AND profile = ?",
                    (reward, feedback_at_s, suggestion_id, profile),
                )
            )
        self._write(f"save the state of profile {profile!r}", statements)

    def awaiting_feedback(self, profile: str, suggestion_id: str) -> bool:
        """Whether ``suggestion_id`` was made for ``profile`` and has no feedback yet."""
        with self._lock:
            try:
                row = (
                    self._connection()
                    .execute(
                        "SELECT reward IS NULL FROM history WHERE id = ? AND profile = ?", (suggestion_id, profile)
                    )
                    .fetchone()
                )
            except sqlite3.Error as error:
                raise self._fail("read the history", error) from error
        return bool(row and row[0])

    def history(self, profile: str, limit: int | None = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` history rows of ``profile`` (all when None), oldest first, JSON decoded."""
        sql = (
            f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM history WHERE profile = ? "
            "ORDER BY created_at_s DESC, rowid DESC"
        )
        params: tuple[Any, ...] = (profile,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        with self._lock:
            try:
                rows = self._connection().execute(sql, params).fetchall()
                out = []
                for values in reversed(rows):
                    row = dict(zip(_HISTORY_COLUMNS, values, strict=True))
                    row["context"] = json.loads(row.pop("context_json"))
                    row["features"] = json.loads(row.pop("features_json"))
                    out.append(row)
                return out
            except (sqlite3.Error, ValueError) as error:
                raise self._fail("read the history", error) from error

    def reset(self, profile: str) -> None:
        """Delete the state and the history of ``profile``."""
        self._write(
            f"reset profile {profile!r}",
            [
                ("DELETE FROM agent_state WHERE profile = ?", (profile,)),
                ("DELETE FROM history WHERE profile = ?", (profile,)),
            ],
        )
