"""The identity state (what :meth:`smartmirror.identity.analyzer.IdentityAnalyzer.update` returns; its JSON is
also the report's ``identity`` section); see ``docs/states.md``."""

from __future__ import annotations

from dataclasses import dataclass

from smartmirror.analyzer import JsonState

__all__ = ["IdentityState"]


@dataclass(frozen=True)
class IdentityState(JsonState):
    """Age and gender over the good frames so far, with their uncertainty (opt-in).

    Attributes
    ----------
    age_years : float or None
        Median of the per-frame age estimates, years.
    age_spread_years : float or None
        Interquartile range of those estimates, years (None below 3 readings).
    gender : str or None
        "female", "male" or "uncertain" (confidence below the threshold).
    gender_confidence : float or None
        The winning side's mean probability, 0.5..1.
    female_probability : float or None
        Mean probability 0..1 of "female".
    frames_used, frames_with_face, frames_seen : int
        Readings taken, frames with a face, frames seen.
    reason : str or None
        Why the fields are None, or a caveat ("gender uncertain: ..."); None otherwise.
    """

    age_years: float | None
    age_spread_years: float | None
    gender: str | None
    gender_confidence: float | None
    female_probability: float | None
    frames_used: int
    frames_with_face: int
    frames_seen: int
    reason: str | None
