"""Vitals from face video: heart rate, HRV and stress, respiration, SpO2, quality and liveness (rPPG).

Pure numpy modules (``signal``, ``rppg``, ``spectrum``, ``colour_signature``, ``heart``, ``rate_path``,
``pooled_rate``, ``noise_floor``, ``hrv``, ``respiration``, ``spo2``, ``stress``, ``quality``, ``accuracy``) and the
:class:`VitalsAnalyzer` that feeds them frame by frame (imported lazily to keep ``import`` light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartmirror.vitals.analyzer import VitalsAnalyzer

__all__ = ["VitalsAnalyzer"]


def __getattr__(name: str) -> Any:
    if name == "VitalsAnalyzer":
        from smartmirror.vitals.analyzer import VitalsAnalyzer

        return VitalsAnalyzer
    raise AttributeError(f"module 'smartmirror.vitals' has no attribute {name!r}")
