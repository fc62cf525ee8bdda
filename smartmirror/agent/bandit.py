"""Disjoint LinUCB (Li et al., 2010): one ridge regression per arm plus an upper confidence bonus.

For arm ``a`` with feature vector ``x`` (shape ``(d,)``)::

    A_a = l2_lambda * I + sum x x^T         b_a = sum reward * x
    theta_a = A_a^-1 b_a                    ucb_a(x) = theta_a . x + alpha * sqrt(x^T A_a^-1 x)

This is the same estimator as MABWiser's ``LearningPolicy.LinUCB(alpha, l2_lambda)`` (the tests check they agree).
It is written out here because the agent needs what MABWiser keeps private: masking arms that are cooling down,
a seeded tie-break, and the learned ``A_`` / ``b_`` as plain arrays to persist and reload bit for bit.

Reference: Li, Chu, Langford, Schapire (2010). A contextual-bandit approach to personalized news article
recommendation. WWW '10.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np


class LinUCB:
    """Disjoint LinUCB over named arms. Config is stored as given; :meth:`reset` validates it and creates the
    learned state ``A_`` (n_arms, d, d), ``b_`` (n_arms, d) and ``counts_`` (n_arms,)."""

    def __init__(self, arms: Sequence[str], n_features: int, alpha: float = 1.0, l2_lambda: float = 1.0):
        self.arms = tuple(arms)
        self.n_features = n_features
        self.alpha = alpha
        self.l2_lambda = l2_lambda

    def reset(self) -> Self:
        """Forget everything learned (every arm back to the ridge prior)."""
        if not self.arms or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms must be distinct and non-empty, got {self.arms!r}")
        if not (isinstance(self.n_features, int) and self.n_features > 0):
            raise ValueError(f"n_features must be a positive int, got {self.n_features!r}")
        if not (isinstance(self.alpha, int | float) and math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        if not (isinstance(self.l2_lambda, int | float) and math.isfinite(self.l2_lambda) and self.l2_lambda > 0):
            raise ValueError(f"l2_lambda must be a finite number > 0, got {self.l2_lambda!r}")
        n, d = len(self.arms), self.n_features
        self.arm_index_ = {arm: i for i, arm in enumerate(self.arms)}
        self.A_ = np.broadcast_to(self.l2_lambda * np.eye(d), (n, d, d)).copy()
        self.b_ = np.zeros((n, d))
        self.counts_ = np.zeros(n, dtype=np.int64)
        self.A_inv_ = np.empty_like(self.A_)
        self.theta_ = np.empty_like(self.b_)
        self._refresh(range(n))
        return self

    def _refresh(self, indices: Sequence[int] | range) -> None:
        """Recompute the cached inverse and coefficients of the given arms from ``A_`` and ``b_``."""
        for i in indices:
            self.A_inv_[i] = np.linalg.inv(self.A_[i])
            self.theta_[i] = self.A_inv_[i] @ self.b_[i]

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """Ridge estimate ``theta_a . x`` of every arm's mean reward, shape (n_arms,)."""
        return self.theta_ @ x

    def upper_bounds(self, x: np.ndarray) -> np.ndarray:
        """LinUCB score of every arm for features ``x``, shape (n_arms,)."""
        width = np.sqrt(np.einsum("i,aij,j->a", x, self.A_inv_, x))
        return self.theta_ @ x + self.alpha * width

    def select(self, x: np.ndarray, allowed: Sequence[str], rng: np.random.Generator) -> str:
        """The allowed arm with the highest upper bound; exact ties are broken at random with ``rng``."""
        if not allowed:
            raise ValueError("no arm is allowed")
        scores = self.upper_bounds(x)
        idx = np.array([self.arm_index_[arm] for arm in allowed])
        allowed_scores = scores[idx]
        best = np.flatnonzero(allowed_scores >= allowed_scores.max() - 1e-12)
        pick = best[0] if len(best) == 1 else best[rng.integers(len(best))]
        return allowed[int(pick)]

    def update(self, x: np.ndarray, arm: str, reward: float) -> Self:
        """Add one observation: ``reward`` (0..1) for ``arm`` with features ``x``."""
        i = self.arm_index_[arm]
        self.A_[i] += np.outer(x, x)
        self.b_[i] += reward * x
        self.counts_[i] += 1
        self._refresh([i])
        return self

    def get_state(self) -> dict[str, Any]:
        """JSON-able learned state; the arrays are little-endian float64/int64 bytes in base64 (exact and fast)."""
        return {
            "arms": list(self.arms),
            "A": _encode(self.A_, "<f8"),
            "b": _encode(self.b_, "<f8"),
            "counts": _encode(self.counts_, "<i8"),
        }

    def set_state(self, state: dict[str, Any]) -> Self:
        """Load a state made by :meth:`get_state`; raises ``ValueError`` if it does not fit these arms/features."""
        self.reset()
        if list(state.get("arms", [])) != list(self.arms):
            raise ValueError(f"saved arms {state.get('arms')!r} differ from {list(self.arms)!r}")
        a = _decode(state["A"], "<f8", self.A_.shape).astype(np.float64)
        b = _decode(state["b"], "<f8", self.b_.shape).astype(np.float64)
        counts = _decode(state["counts"], "<i8", self.counts_.shape).astype(np.int64)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("saved bandit arrays contain non-finite values")
        self.A_, self.b_, self.counts_ = a, b, counts
        self._refresh(range(len(self.arms)))
        return self


def _encode(array: np.ndarray, dtype: str) -> dict[str, Any]:
    return {"shape": list(array.shape), "base64": base64.b64encode(array.astype(dtype).tobytes()).decode("ascii")}


def _decode(saved: dict[str, Any], dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if list(saved.get("shape", [])) != list(shape):
        raise ValueError(f"saved bandit array has shape {saved.get('shape')!r}, expected {list(shape)!r}")
    try:
        raw = base64.b64decode(saved["base64"], validate=True)
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    except (ValueError, TypeError) as error:  # binascii.Error is a ValueError
        raise ValueError(f"saved bandit array is unreadable: {error}") from None
