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

A lock is not a failure: when another process (a second app, the ``sqlite3`` tool) holds the database, a write
waits at most ``write_wait_s`` (0.1 s), then is queued, in order, and a background thread retries until the lock
clears and writes everything that was missed. Reads made meanwhile see the queued writes. :meth:`AgentStore.close`
waits up to ``timeout_s`` for the queue to drain.

Kept whole (~410 lines): one class whose reads, write queue and retrier share one connection, lock and queue.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

log = logging.getLogger(__name__)

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


#: Seconds between retries of queued writes (doubling up to the last).
_RETRY_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0)


def _is_lock(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return True
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@dataclass
class _Write:
    """One transaction, and what it means for reads made before it reaches the file."""

    doing: str
    statements: list[tuple[str, tuple[Any, ...]]]
    profile: str
    state: dict[str, Any] | None = None
    history_row: dict[str, Any] | None = None          # decoded, as history() returns it
    feedback: tuple[str, float, float] | None = None
    reset: bool = False


class AgentStore:
    """The agent's SQLite file. ``path`` is stored as given; the file is opened on first use (or :meth:`open`).

    ``timeout_s`` is how long opening and reading wait for another process's lock before giving up with
    :class:`StoreError` (and how long :meth:`close` waits for queued writes); a write waits ``write_wait_s``,
    then is queued and retried in the background. Safe to share between threads (one connection behind a lock).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 2.0, write_wait_s: float = 0.1):
        self.path = path
        self.timeout_s = timeout_s
        self.write_wait_s = write_wait_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pending: deque[_Write] = deque()
        self._retrier: threading.Thread | None = None
        self._closing = threading.Event()
        self._failed: StoreError | None = None   # a queued write failed for a reason other than a lock

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

    @property
    def pending_writes(self) -> int:
        """Writes queued behind another process's lock (0 when everything is in the file)."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait up to ``timeout_s`` (default ``timeout_s``) for queued writes; True when none are left."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            with self._lock:
                if not self._pending or self._conn is None:
                    return not self._pending
                self._drain()
                if not self._pending:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        """Write what is queued (waiting up to ``timeout_s``), then close the connection (safe to call twice)."""
        if not self.flush():
            log.warning("agent database %r still locked: %d write(s) could not be saved", str(self.path),
                        self.pending_writes)
        self._closing.set()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._pending.clear()
        self._closing = threading.Event()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        self.open()
        assert self._conn is not None
        return self._conn

    def _execute(self, statements: list[tuple[str, tuple[Any, ...]]], wait_s: float) -> None:
        """Run ``statements`` in one transaction, waiting at most ``wait_s`` for a lock (call with the lock)."""
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000))}")
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
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")

    def _write(self, write: _Write) -> None:
        """Write now, or queue behind a lock (in order) and retry in the background."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if not self._pending:
                try:
                    self._execute(write.statements, self.write_wait_s)
                    return
                except sqlite3.Error as error:
                    if not _is_lock(error):
                        raise self._fail(write.doing, error) from error
                    log.info("agent database %r is locked; the write is queued and retried", str(self.path))
            self._pending.append(write)
            self._start_retrier()

    def _drain(self) -> None:
        """Write queued transactions in order until one meets the lock again (call with the lock)."""
        while self._pending:
            write = self._pending[0]
            try:
                self._execute(write.statements, self.write_wait_s)
            except sqlite3.Error as error:
                if _is_lock(error):
                    return
                self._failed = self._fail(write.doing, error)
                log.warning("%s; %d queued write(s) dropped", self._failed, len(self._pending))
                self._pending.clear()
                return
            self._pending.popleft()
        log.info("agent database %r: the lock cleared and the queued writes are saved", str(self.path))

    def _start_retrier(self) -> None:
        if self._retrier is not None and self._retrier.is_alive():
            return
        closing = self._closing

        def retry() -> None:
            attempt = 0
            while not closing.wait(_RETRY_DELAYS_S[min(attempt, len(_RETRY_DELAYS_S) - 1)]):
                attempt += 1
                with self._lock:
                    if self._conn is None or not self._pending:
                        return
                    self._drain()
                    if not self._pending:
                        return

        self._retrier = threading.Thread(target=retry, name="agent-store-retry", daemon=True)
        self._retrier.start()

    def load_state(self, profile: str) -> dict[str, Any] | None:
        """The saved state of ``profile``, or None when it has none (queued writes included)."""
        with self._lock:
            for write in reversed(self._pending):
                if write.profile == profile and (write.state is not None or write.reset):
                    return None if write.reset else json.loads(json.dumps(write.state))
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
        write = _Write(f"save the state of profile {profile!r}", [], profile, state=json.loads(json.dumps(state)),
                       feedback=feedback)
        statements = write.statements
        statements.extend([
            (
                "INSERT INTO agent_state (profile, state_json, updated_at_s) VALUES (?, ?, ?) "
                "ON CONFLICT(profile) DO UPDATE SET state_json = excluded.state_json, "
                "updated_at_s = excluded.updated_at_s",
                (profile, json.dumps(state), time.time()),
            )
        ])
        if suggestion is not None:
            row = {**suggestion, "profile": profile, "reward": None, "feedback_at_s": None}
            write.history_row = {c: row[c] for c in _HISTORY_COLUMNS if c in row}
            write.history_row.update(context=json.loads(json.dumps(row["context"])),
                                     features=list(row["features"]))
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
        self._write(write)

    def awaiting_feedback(self, profile: str, suggestion_id: str) -> bool:
        """Whether ``suggestion_id`` was made for ``profile`` and has no feedback yet (queued writes included)."""
        with self._lock:
            queued = [w for w in self._pending if w.profile == profile]
            if any(w.feedback and w.feedback[0] == suggestion_id for w in queued):
                return False
            if any(w.history_row and w.history_row["id"] == suggestion_id for w in queued):
                return True
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
            except (sqlite3.Error, ValueError) as error:
                raise self._fail("read the history", error) from error
            out = self._with_queued(profile, out)
        return out if limit is None else out[-int(limit):] if limit > 0 else []

    def _with_queued(self, profile: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """History rows as they will be once the queued writes reach the file."""
        for write in self._pending:
            if write.profile != profile:
                continue
            if write.reset:
                rows = []
            if write.history_row is not None:
                rows.append({**write.history_row, "reward": None, "feedback_at_s": None})
            if write.feedback is not None:
                suggestion_id, reward, at_s = write.feedback
                for row in rows:
                    if row["id"] == suggestion_id:
                        row.update(reward=reward, feedback_at_s=at_s)
        return rows

    def reset(self, profile: str) -> None:
        """Delete the state and the history of ``profile``."""
        self._write(_Write(
            f"reset profile {profile!r}",
            [
                ("DELETE FROM agent_state WHERE profile = ?", (profile,)),
                ("DELETE FROM history WHERE profile = ?", (profile,)),
            ],
            profile,
            reset=True,
        ))
