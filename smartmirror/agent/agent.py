"""InterventionAgent: suggests one intervention at a time and learns from feedback which one helps whom.

Decision order in :meth:`InterventionAgent.suggest` (``now`` = ``context["now"]`` when given, else the wall clock):

1. Driver safety rule (mode "driver"): ``microsleep`` is True or ``drowsiness_probability >=
   critical_drowsiness`` (0.8) -> ``pull_over``, whatever the cooldowns, the face gate or learning say; while the
   condition lasts it is repeated every ``pull_over_realert_s`` (60 s) and nothing else is suggested between.
2. Confidence gate: ``face_present`` is False -> None (the analyzers' numbers are stale).
3. Cooldown: fewer than ``min_interval_minutes`` (10) since the last suggestion -> None. The agent's own record
   is used, or the context's ``minutes_since_last_suggestion`` when that is smaller.
4. Learned choice: LinUCB over the mode's actions (see ``actions.MODE_ACTIONS``), leaving out any action
   dismissed (reward < 0.25) within the last ``dismissed_repeat_minutes`` (30).

``feedback(suggestion, reward)`` updates the chosen arm with the suggestion's own feature vector. State (the
bandit's ``A_``/``b_``, the random generator, the cooldown clocks) is saved to the store after every call.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from smartmirror.agent.actions import ACTIONS, LEARNED_ACTIONS, MODE_ACTIONS, PULL_OVER
from smartmirror.agent.bandit import LinUCB
from smartmirror.agent.context import FEATURE_NAMES, AgentContext, context_features, parse_context
from smartmirror.agent.reward import DISMISSED_BELOW
from smartmirror.agent.store import AgentStore, StoreError
from smartmirror.modes import check_mode

logger = logging.getLogger(__name__)

STATE_VERSION = 1
CRITICAL_DROWSINESS = 0.8
"""Driver mode: a drowsiness probability at or above this always raises ``pull_over``."""
PULL_OVER_REALERT_S = 60.0
"""Driver mode: while the critical condition lasts, ``pull_over`` is repeated this often (seconds)."""
_MAX_PENDING = 1000  # suggestions awaiting feedback kept in memory
_MAX_MEMORY_HISTORY = 500


@dataclass(frozen=True)
class Suggestion:
    """One suggestion. ``action`` is the contract's id; ``source`` is "bandit" or "safety_rule";
    ``expected_reward`` is the bandit's estimate (0..1 scale, None for the safety rule); ``features`` the
    vector the bandit saw (order ``FEATURE_NAMES``); ``context`` the validated context (read-only)."""

    action: str
    id: str
    title: str
    message: str
    created_at_s: float
    mode: str
    source: str
    expected_reward: float | None
    features: tuple[float, ...]
    context: Mapping[str, Any] = field(compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (for the API and the history table)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {"context": dict(self.context), "features": list(self.features)}


class InterventionAgent:
    """Contextual-bandit intervention agent (the evaluation contract).

    Parameters
    ----------
    mode : "wellness" | "driver" | "kiosk"
        Default mode; a context's ``mode`` key overrides it for that call.
    seed : int
        Seeds the tie-breaking generator of a new profile (a reloaded profile continues its saved generator).
    store : None, AgentStore, or a path
        None keeps everything in memory. A path is opened as ``AgentStore(path)``; ``AgentStore.default()`` is
        the file under the user's data dir. A corrupt, locked or unreadable database logs a warning and the
        agent starts fresh in memory (``store_error_`` says why).
    profile : str
        Whose state this is (one row per profile in the store).
    alpha : float
        LinUCB exploration width.
    min_interval_minutes : float
        At most one suggestion per this many minutes.
    dismissed_repeat_minutes : float
        A dismissed action is not suggested again within this many minutes.
    """

    def __init__(
        self,
        mode: str = "wellness",
        seed: int = 0,
        store: AgentStore | str | os.PathLike[str] | None = None,
        *,
        profile: str = "default",
        alpha: float = 0.5,
        l2_lambda: float = 1.0,
        min_interval_minutes: float = 10.0,
        dismissed_repeat_minutes: float = 30.0,
        critical_drowsiness: float = CRITICAL_DROWSINESS,
        pull_over_realert_s: float = PULL_OVER_REALERT_S,
    ):
        self.mode = mode
        self.seed = seed
        self.store = store
        self.profile = profile
        self.alpha = alpha
        self.l2_lambda = l2_lambda
        self.min_interval_minutes = min_interval_minutes
        self.dismissed_repeat_minutes = dismissed_repeat_minutes
        self.critical_drowsiness = critical_drowsiness
        self.pull_over_realert_s = pull_over_realert_s
        self._lock = threading.RLock()
        self._check_config()
        self._start()

    # --- set-up -----------------------------------------------------------------------------------------------

    def _check_config(self) -> None:
        check_mode(self.mode)
        if not isinstance(self.profile, str) or not self.profile:
            raise ValueError(f"profile must be a non-empty string, got {self.profile!r}")
        for name in ("min_interval_minutes", "dismissed_repeat_minutes", "pull_over_realert_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.critical_drowsiness, int | float) and 0 < self.critical_drowsiness <= 1):
            raise ValueError(f"critical_drowsiness must be in (0, 1], got {self.critical_drowsiness!r}")

    def _fresh_state(self) -> None:
        self.policy_ = LinUCB(LEARNED_ACTIONS, len(FEATURE_NAMES), alpha=self.alpha, l2_lambda=self.l2_lambda).reset()
        self.rng_ = np.random.default_rng(self.seed)
        self.last_suggestion_at_s_: float | None = None
        self.last_pull_over_at_s_: float | None = None
        self.dismissed_until_s_: dict[str, float] = {}
        self.pending_: OrderedDict[str, Suggestion] = OrderedDict()
        self.recent_history_: deque[dict[str, Any]] = deque(maxlen=_MAX_MEMORY_HISTORY)

    def _start(self) -> None:
        self._fresh_state()
        self.store_error_: str | None = None
        store = self.store
        if store is not None and not isinstance(store, AgentStore):
            store = AgentStore(store)
        self.store_ = store
        if store is None:
            return
        try:
            store.open()
            saved = store.load_state(self.profile)
            if saved is not None:
                self._set_state(saved)
        except (StoreError, ValueError, KeyError, TypeError) as error:
            self._fresh_state()
            self._drop_store(error, "starting a fresh in-memory agent")

    def _drop_store(self, error: BaseException, what_now: str) -> None:
        message = str(error) if isinstance(error, StoreError) else f"saved agent state is unusable: {error!r}"
        self.store_error_ = message
        logger.warning("SmartMirror agent: %s; %s (nothing will be saved).", message, what_now)
        if self.store_ is not None:
            try:
                self.store_.close()
            except Exception:  # noqa: BLE001 - the store is being dropped anyway
                pass
        self.store_ = None

    def get_state(self) -> dict[str, Any]:
        """JSON-able learned state (what the store saves)."""
        return {
            "version": STATE_VERSION,
            "features": list(FEATURE_NAMES),
            "bandit": self.policy_.get_state(),
            "rng": self.rng_.bit_generator.state,
            "last_suggestion_at_s": self.last_suggestion_at_s_,
            "last_pull_over_at_s": self.last_pull_over_at_s_,
            "dismissed_until_s": dict(self.dismissed_until_s_),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or state.get("features") != list(FEATURE_NAMES):
            raise ValueError("saved state has another version or feature layout")
        self.policy_.set_state(state["bandit"])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        self.rng_ = rng
        self.last_suggestion_at_s_ = state["last_suggestion_at_s"]
        self.last_pull_over_at_s_ = state["last_pull_over_at_s"]
        self.dismissed_until_s_ = {str(k): float(v) for k, v in state["dismissed_until_s"].items()}

    def _save(self, **row: Any) -> None:
        if self.store_ is None:
            return
        try:
            self.store_.save(self.profile, self.get_state(), **row)
        except StoreError as error:
            self._drop_store(error, "continuing in memory with the current state")

    # --- the contract -----------------------------------------------------------------------------------------

    def suggest(self, context: Mapping[str, Any]) -> Suggestion | None:
        """One suggestion for this ``context`` (keys in ``smartmirror.agent.context``), or None.

        Raises ``ContextError`` (a ``ValueError``) for a malformed context.
        """
        ctx = parse_context(context, default_mode=self.mode)
        with self._lock:
            now_s = ctx.now if ctx.now is not None else time.time()
            if ctx.mode == "driver" and (ctx.microsleep or ctx.drowsiness_probability >= self.critical_drowsiness):
                last = self.last_pull_over_at_s_
                if last is not None and 0 <= now_s - last < self.pull_over_realert_s:
                    return None
                self.last_pull_over_at_s_ = now_s
                return self._issue(PULL_OVER, ctx, now_s, source="safety_rule", features=None, expected=None)
            if not ctx.face_present:
                return None
            minutes_since = math.inf
            if self.last_suggestion_at_s_ is not None:
                minutes_since = (now_s - self.last_suggestion_at_s_) / 60.0
                minutes_since = minutes_since if minutes_since >= 0 else math.inf  # clock went back: no record
            if ctx.minutes_since_last_suggestion is not None:
                minutes_since = min(minutes_since, ctx.minutes_since_last_suggestion)
            if minutes_since < self.min_interval_minutes:
                return None
            allowed = [a for a in MODE_ACTIONS[ctx.mode] if self.dismissed_until_s_.get(a, -math.inf) <= now_s]
            if not allowed:
                return None
            x = context_features(ctx)
            action = self.policy_.select(x, allowed, self.rng_)
            expected = float(self.policy_.expected_rewards(x)[self.policy_.arm_index_[action]])
            return self._issue(action, ctx, now_s, source="bandit", features=x, expected=expected)

    def _issue(
        self,
        action: str,
        ctx: AgentContext,
        now_s: float,
        *,
        source: str,
        features: np.ndarray | None,
        expected: float | None,
    ) -> Suggestion:
        spec = ACTIONS[action]
        suggestion = Suggestion(
            action=action,
            id=uuid.uuid4().hex,
            title=spec.title,
            message=spec.message,
            created_at_s=now_s,
            mode=ctx.mode,
            source=source,
            expected_reward=expected,
            features=() if features is None else tuple(float(v) for v in features),
            context=MappingProxyType(ctx.as_dict() | {"now": now_s}),
        )
        self.last_suggestion_at_s_ = now_s
        self.pending_[suggestion.id] = suggestion
        while len(self.pending_) > _MAX_PENDING:
            self.pending_.popitem(last=False)
        row = suggestion.to_dict()
        del row["title"], row["message"]
        self.recent_history_.append({**row, "profile": self.profile, "reward": None, "feedback_at_s": None})
        self._save(suggestion=row)
        return suggestion

    def feedback(self, suggestion: Suggestion, reward: float, *, now: float | None = None) -> None:
        """Learn from ``reward`` in 0..1 for ``suggestion`` (see ``smartmirror.agent.reward`` for the mapping of
        helpful / ignored / not helpful and the implicit reward). ``now`` (seconds, same clock as the context's)
        starts a dismissal's repeat block; it defaults to the suggestion's time.

        Raises ``ValueError`` for a reward outside 0..1, or for a suggestion this agent did not make or that
        already has feedback.
        """
        if not isinstance(suggestion, Suggestion):
            raise ValueError(f"feedback needs a Suggestion returned by suggest(), got {type(suggestion).__name__}")
        if isinstance(reward, bool) or not isinstance(reward, int | float | np.floating | np.integer):
            raise ValueError(f"reward must be a number in 0..1, got {reward!r}")
        reward = float(reward)
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be in 0..1, got {reward!r}")
        with self._lock:
            known = self.pending_.pop(suggestion.id, None) is not None
            if not known and self.store_ is not None:
                try:
                    known = self.store_.awaiting_feedback(self.profile, suggestion.id)
                except StoreError as error:
                    self._drop_store(error, "continuing in memory with the current state")
            if not known:
                raise ValueError(f"suggestion {suggestion.id} is unknown to this agent or already has feedback")
            at_s = suggestion.created_at_s if now is None else float(now)
            if suggestion.source == "bandit" and suggestion.action in self.policy_.arm_index_:
                self.policy_.update(np.asarray(suggestion.features, dtype=np.float64), suggestion.action, reward)
                if reward < DISMISSED_BELOW:
                    until = at_s + 60.0 * self.dismissed_repeat_minutes
                    self.dismissed_until_s_[suggestion.action] = max(
                        until, self.dismissed_until_s_.get(suggestion.action, -math.inf)
                    )
            for row in reversed(self.recent_history_):
                if row["id"] == suggestion.id:
                    row["reward"], row["feedback_at_s"] = reward, at_s
                    break
            self._save(feedback=(suggestion.id, reward, at_s))

    # --- housekeeping -----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything this profile learned and its history, in memory and in the store."""
        with self._lock:
            self._fresh_state()
            if self.store_ is not None:
                try:
                    self.store_.reset(self.profile)
                except StoreError as error:
                    self._drop_store(error, "continuing in memory")

    def history(self, limit: int | None = 100) -> list[dict[str, Any]]:
        """Recent suggestions with their reward (None until feedback), oldest first: from the store when there
        is one, else from memory (the last 500)."""
        with self._lock:
            if self.store_ is not None:
                try:
                    return self.store_.history(self.profile, limit)
                except StoreError as error:
                    self._drop_store(error, "continuing in memory")
            rows = list(self.recent_history_)
            return rows if limit is None else rows[-limit:] if limit > 0 else []

    def close(self) -> None:
        """Close the store connection (the state is already saved)."""
        with self._lock:
            if self.store_ is not None:
                self.store_.close()
