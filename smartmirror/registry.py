"""The analyzer registry: each analyzer's factory, its rate on the source clock and the states it needs.

:func:`analyzer_specs` is what every driver of :mod:`smartmirror.pipeline` builds its analyzers from, so the live
page, a REST session, the clip report and eval run the same analyzers on the same schedule. Heavy third-party
packages (onnxruntime for emotion and identity, torch for an emotion model other than the default) are imported
inside the factories only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from smartmirror.analyzer import Analyzer
from smartmirror.modes import check_mode

#: Least source seconds between emotion updates (expressions change slowly; the CNN is the costly part).
EMOTION_RATE_S = 0.2
#: Least source seconds between identity (age, gender) updates (its own sampling interval).
IDENTITY_RATE_S = 0.5
#: The analyzers a report or session runs when not told otherwise (identity is opt-in).
DEFAULT_ANALYZERS = ("vitals", "fatigue", "emotion")
#: Every registered analyzer name.
ANALYZER_NAMES = ("vitals", "fatigue", "emotion", "identity")


@dataclass(frozen=True)
class AnalyzerSpec:
    """How one analyzer is built and scheduled.

    Attributes
    ----------
    name : str
        The state's name (``vitals``, ``fatigue``, ...).
    factory : callable
        Builds the analyzer.
    rate_s : float or None
        Least source seconds between updates; None: every frame.
    needs : tuple of str
        Analyzers whose latest state is passed to ``update`` as ``<name>_state=``.
    every_frame : bool
        Live engine only: also read the frames the face tracker skipped while busy (with an interpolated face).
        For the vitals: a skipped frame is a hole in the pulse trace.
    """

    name: str
    factory: Callable[[], Analyzer]
    rate_s: float | None = None
    needs: tuple[str, ...] = ()
    every_frame: bool = False


def vitals_spec(pulse_method: str | None = None, *, name: str = "vitals", live: bool = True,
                max_seconds: float | None = None, stream_pulse: bool | None = None) -> AnalyzerSpec:
    """The vitals analyzer's spec (every frame, skipped frames too); eval runs several, one per pulse input.

    ``max_seconds`` bounds the per-frame data kept (default: the analyzer's five minutes); ``stream_pulse``: see
    :class:`smartmirror.vitals.analyzer.VitalsAnalyzer`.
    """
    options: dict[str, Any] = {"live": live, "stream_pulse": stream_pulse}
    if pulse_method is not None:
        options["method"] = pulse_method
    if max_seconds is not None:
        options["max_seconds"] = max_seconds

    def build() -> Analyzer:
        from smartmirror.vitals.analyzer import VitalsAnalyzer

        return VitalsAnalyzer(**options)

    return AnalyzerSpec(name, build, every_frame=True)


def _fatigue(mode: str) -> Callable[[], Analyzer]:
    def build() -> Analyzer:
        from smartmirror.fatigue.analyzer import FatigueAnalyzer

        return FatigueAnalyzer(mode=mode)

    return build


def _emotion() -> Analyzer:
    from smartmirror.emotion.analyzer import EmotionAnalyzer  # its model (ORT or torch) loads when built

    return EmotionAnalyzer()


def _identity() -> Analyzer:
    from smartmirror.identity.analyzer import IdentityAnalyzer  # onnxruntime: imported when built

    return IdentityAnalyzer()


def analyzer_specs(
    names: Iterable[str] = DEFAULT_ANALYZERS, *, mode: str = "wellness", pulse_method: str | None = None,
    live: bool = True, rates_s: Mapping[str, float | None] | None = None, stream_pulse: bool | None = None,
) -> list[AnalyzerSpec]:
    """The registered analyzers by name, with their standard rates and inputs.

    Parameters
    ----------
    names : iterable of str
        From :data:`ANALYZER_NAMES`.
    mode : str
        The fatigue analyzer's mode (:data:`smartmirror.modes.MODES`).
    pulse_method : str, optional
        The vitals' pulse method (None: the measured default).
    live : bool
        Vitals compute their live state on every update (the live page, REST); False for the clip report and
        eval, which only need the summary.
    rates_s : mapping, optional
        Overrides of ``rate_s`` by name (the API's ``emotion_interval_s``).
    stream_pulse : bool, optional
        A streamable learned pulse method runs frame by frame (default: when ``live``; the clip report sets
        True).

    Raises
    ------
    ValueError
        For an unknown name or mode.
    """
    check_mode(mode)
    registry = {
        "vitals": vitals_spec(pulse_method, live=live, stream_pulse=stream_pulse),
        "fatigue": AnalyzerSpec("fatigue", _fatigue(mode)),
        "emotion": AnalyzerSpec("emotion", _emotion, rate_s=EMOTION_RATE_S, needs=("fatigue",)),
        "identity": AnalyzerSpec("identity", _identity, rate_s=IDENTITY_RATE_S),
    }
    names = list(names)
    unknown = [name for name in names if name not in registry]
    if unknown:
        raise ValueError(f"unknown analyzers {unknown}; choose from {list(ANALYZER_NAMES)}")
    rates_s = rates_s or {}
    return [replace(registry[name], rate_s=rates_s[name]) if name in rates_s else registry[name] for name in names]


def specs_for(analyzers: Mapping[str, Analyzer], rates_s: Mapping[str, float | None] | None = None
              ) -> list[AnalyzerSpec]:
    """Specs for ready-made analyzer instances, scheduled like the registered ones of the same name."""
    standard = {spec.name: spec for spec in analyzer_specs(ANALYZER_NAMES, rates_s=rates_s)}
    return [replace(standard[name], factory=lambda a=analyzer: a) if name in standard
            else AnalyzerSpec(name, lambda a=analyzer: a) for name, analyzer in analyzers.items()]


def ordered(specs: Iterable[AnalyzerSpec]) -> list[AnalyzerSpec]:
    """Specs with every analyzer after the ones it needs (otherwise in the given order).

    Raises
    ------
    ValueError
        For duplicate names or needs that form a cycle.
    """
    pending = list(specs)
    names = [spec.name for spec in pending]
    if len(set(names)) != len(names):
        raise ValueError(f"analyzer names must be unique: {names}")
    done: list[AnalyzerSpec] = []
    while pending:
        ready = [s for s in pending if all(n not in names or n in {d.name for d in done} for n in s.needs)]
        if not ready:
            raise ValueError(f"analyzers need each other: {[s.name for s in pending]}")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


