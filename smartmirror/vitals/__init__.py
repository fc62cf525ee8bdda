"""Vitals from face video: heart rate, HRV and stress, respiration, SpO2, quality and liveness (rPPG).

Pure numpy modules (``signal``, ``rppg``, ``spectrum``, ``colour_signature``, ``heart``, ``rate_path``,
``pooled_rate``, ``noise_floor``, ``hrv``, ``respiration``, ``spo2``, ``stress``, ``quality``, ``accuracy``) and the
:class:`VitalsAnalyzer` that feeds them frame by frame. The learned pulse models (``neural``, ``training``,
``nets``) and the SpO2 Tiny Transformer (``spo2_model``) need torch and are imported from their modules.
"""

from smartmirror.vitals.analyzer import VitalsAnalyzer

__all__ = ["VitalsAnalyzer"]
