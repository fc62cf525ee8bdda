"""Agent persistence in SQLite: identical reload, history, reset, profiles, corrupt/locked database fallback,
and a process killed in the middle of writing."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from smartmirror.agent import AgentStore, InterventionAgent
from smartmirror.agent.simulator import make_context, make_user


def _run(agent: InterventionAgent, user, rng: np.random.Generator, start: int, steps: int) -> list[str]:
    """Drive ``agent`` through ``steps`` simulated check-ins; return the actions it chose."""
    actions = []
    for t in range(start, start + steps):
        ctx = make_context(rng, now_s=3600.0 * (t + 1))
        u_ignore, u_help = rng.random(2)
        s = agent.suggest(ctx)
        actions.append(s.action)
        agent.feedback(s, user.respond(ctx, s.action, u_ignore, u_help))
    return actions


def test_state_reloads_identical_after_restart(tmp_path):
    path = tmp_path / "agent.sqlite3"
    user = make_user(np.random.default_rng(11))
    rng_db, rng_mem = np.random.default_rng(1), np.random.default_rng(1)
    on_disk = InterventionAgent(seed=4, store=path)
    in_memory = InterventionAgent(seed=4, store=None)
    assert _run(on_disk, user, rng_db, 0, 80) == _run(in_memory, user, rng_mem, 0, 80)
    on_disk.close()
    del on_disk

    restarted = InterventionAgent(seed=999, store=path)  # the saved state wins over the seed
    assert restarted.store_error_ is None
    assert restarted.get_state() == in_memory.get_state()
    np.testing.assert_array_equal(restarted.policy_.A_, in_memory.policy_.A_)
    np.testing.assert_array_equal(restarted.policy_.b_, in_memory.policy_.b_)
    assert restarted.policy_.counts_.sum() == 80
    # Same decisions afterwards as an agent that was never restarted.
    assert _run(restarted, user, rng_db, 80, 60) == _run(in_memory, user, rng_mem, 80, 60)
    np.testing.assert_array_equal(restarted.policy_.A_, in_memory.policy_.A_)

    history = restarted.history(limit=None)
    assert len(history) == 140
    assert all(row["reward"] is not None for row in history)
    assert [row["action"] for row in history[-60:]] == [row["action"] for row in in_memory.history(limit=60)]
    assert history[0]["context"]["now"] == 3600.0 and len(history[0]["features"]) == 10


def test_feedback_after_restart_for_a_suggestion_made_before(tmp_path):
    path = tmp_path / "agent.sqlite3"
    first = InterventionAgent(seed=0, store=path)
    s = first.suggest({"now": 0.0, "stress_score": 80.0})
    first.close()
    second = InterventionAgent(seed=0, store=path)
    second.feedback(s, 1.0)
    assert second.policy_.counts_.sum() == 1
    with pytest.raises(ValueError, match="already has feedback"):
        InterventionAgent(seed=0, store=path).feedback(s, 1.0)


def test_reset_and_profiles(tmp_path):
    path = tmp_path / "agent.sqlite3"
    user = make_user(np.random.default_rng(2))
    alice = InterventionAgent(seed=0, store=path, profile="alice")
    bob = InterventionAgent(seed=0, store=path, profile="bob")
    _run(alice, user, np.random.default_rng(3), 0, 20)
    _run(bob, user, np.random.default_rng(4), 0, 5)
    alice.reset()
    assert alice.policy_.counts_.sum() == 0 and alice.history() == []
    reopened = InterventionAgent(seed=0, store=path, profile="alice")
    np.testing.assert_array_equal(reopened.policy_.A_, np.broadcast_to(np.eye(10), (5, 10, 10)))
    assert reopened.suggest({"now": 0.0}) is not None  # the cooldown clock was reset too
    assert InterventionAgent(seed=0, store=path, profile="bob").policy_.counts_.sum() == 5


def test_corrupt_database_gives_warning_and_fresh_in_memory_agent(tmp_path, caplog):
    path = tmp_path / "agent.sqlite3"
    garbage = b"this is not a database\x00\xff" * 500
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="smartmirror.agent"):
        agent = InterventionAgent(seed=0, store=path)
    assert agent.store_ is None
    assert "not a database" in agent.store_error_ and str(path) in agent.store_error_
    assert any("fresh in-memory agent" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    s = agent.suggest({"now": 0.0})
    agent.feedback(s, 1.0)
    assert agent.policy_.counts_.sum() == 1
    assert path.read_bytes() == garbage  # the user's file is left alone for inspection


def test_tampered_state_gives_warning_and_fresh_agent(tmp_path, caplog):
    path = tmp_path / "agent.sqlite3"
    InterventionAgent(seed=0, store=path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO agent_state VALUES ('default', ?, 0)", (json.dumps({"version": 1}),))
    with caplog.at_level(logging.WARNING, logger="smartmirror.agent"):
        agent = InterventionAgent(seed=0, store=path)
    assert agent.store_ is None and "unusable" in agent.store_error_
    assert agent.suggest({"now": 0.0}) is not None


def test_locked_database_gives_warning_and_fresh_in_memory_agent(tmp_path, caplog):
    path = tmp_path / "agent.sqlite3"
    trained = InterventionAgent(seed=0, store=path)
    _run(trained, make_user(np.random.default_rng(0)), np.random.default_rng(0), 0, 10)
    trained.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="smartmirror.agent"):
            agent = InterventionAgent(seed=0, store=AgentStore(path, timeout_s=0.2))
        assert time.perf_counter() - started < 5.0
        assert agent.store_ is None and "locked" in agent.store_error_
        assert any("locked" in r.getMessage() for r in caplog.records)
        assert agent.policy_.counts_.sum() == 0  # fresh, not the saved 10 observations
        assert agent.suggest({"now": 0.0}) is not None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert InterventionAgent(seed=0, store=path).policy_.counts_.sum() == 10  # nothing was lost


_LOCK_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
    """
)


def test_a_lock_held_by_another_process_queues_writes_and_saves_them_when_it_clears(tmp_path):
    path = tmp_path / "agent.sqlite3"
    agent = InterventionAgent(seed=0, store=AgentStore(path))
    user, rng = make_user(np.random.default_rng(0)), np.random.default_rng(0)
    _run(agent, user, rng, 0, 5)
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(path), "3.0"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        _run(agent, user, rng, 5, 5)                        # 10 writes behind a 3 s lock
        assert time.perf_counter() - started < 1.5          # each locked write blocked 2 s before
        assert agent.store_ is not None and agent.store_error_ is None   # still attached
        assert agent.store_.pending_writes > 0
        assert len(agent.history(limit=None)) == 10         # reads see the queued writes
        with sqlite3.connect(path, timeout=5) as conn:      # WAL: readers are not blocked by the writer
            assert conn.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 5
    finally:
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while agent.store_.pending_writes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agent.store_.pending_writes == 0
    with sqlite3.connect(path) as conn:                    # what was missed is written, feedback included
        assert conn.execute("SELECT COUNT(*) FROM history WHERE reward IS NOT NULL").fetchone()[0] == 10
    _run(agent, user, rng, 10, 2)
    agent.close()
    reloaded = InterventionAgent(seed=1, store=path)
    assert reloaded.get_state() == agent.get_state() and reloaded.policy_.counts_.sum() == 12


def test_close_waits_for_queued_writes_within_its_timeout(tmp_path):
    path = tmp_path / "agent.sqlite3"
    agent = InterventionAgent(seed=0, store=AgentStore(path, timeout_s=5.0))
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(path), "1.0"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        agent.feedback(agent.suggest({"now": 0.0, "stress_score": 80.0}), 1.0)
        agent.close()                                       # the lock clears after 1 s, within the 5 s
    finally:
        holder.wait(timeout=30)
    assert InterventionAgent(seed=0, store=path).policy_.counts_.sum() == 1


def test_default_store_lives_in_user_data_dir(tmp_path, monkeypatch):
    import platformdirs

    monkeypatch.delenv("SMARTMIRROR_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert AgentStore.default().path == Path(platformdirs.user_data_dir("smartmirror")) / "agent.sqlite3"
    monkeypatch.setenv("SMARTMIRROR_DATA_DIR", str(tmp_path / "data"))
    store = AgentStore.default()
    assert store.path == tmp_path / "data" / "agent.sqlite3"
    agent = InterventionAgent(seed=0, store=store)
    agent.feedback(agent.suggest({"now": 0.0}), 1.0)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM history WHERE reward = 1.0").fetchone()[0] == 1


_WRITER = textwrap.dedent(
    """
    import sys
    from smartmirror.agent import InterventionAgent
    agent = InterventionAgent(seed=0, store=sys.argv[1])
    t = 0
    while True:
        t += 1
        s = agent.suggest({"now": 3600.0 * t, "stress_score": float(t % 100)})
        agent.feedback(s, (t % 3) / 2)
    """
)


def test_kill_mid_write_leaves_a_consistent_database(tmp_path):
    path = tmp_path / "agent.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        deadline = time.monotonic() + 60
        rows = 0
        while rows < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with sqlite3.connect(path, timeout=1) as conn:
                    rows = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
            except sqlite3.Error:
                rows = 0
        assert writer.poll() is None, "writer died on its own"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert rows >= 200
    agent = InterventionAgent(seed=0, store=path)
    assert agent.store_error_ is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rated = conn.execute("SELECT COUNT(*) FROM history WHERE reward IS NOT NULL").fetchone()[0]
    # State and history are written in one transaction, so they agree after the kill.
    assert agent.policy_.counts_.sum() == rated >= 200
    agent.feedback(agent.suggest({"now": 1e9}), 1.0)  # and it keeps working
