"""The live vitals state (what :meth:`smartmirror.vitals.analyzer.VitalsAnalyzer.update` returns); see
``docs/states.md`` for the JSON form."""

from __future__ import annotations

from dataclasses import dataclass

from smartmirror.analyzer import JsonState
from smartmirror.vitals.stress import StressEstimate

__all__ = ["HrvSummary", "StressEstimate", "VitalsState", "VitalsWarmup"]


@dataclass(frozen=True)
class VitalsWarmup:
    """Seconds of face data still needed before each vital's first value (0 once it can be shown)."""

    heart_rate: float
    spo2: float
    respiration: float
    hrv: float


@dataclass(frozen=True)
class HrvSummary:
    """Heart-rate variability over the current run of clean beats (the report's ``hrv`` section).

    ``sdnn_ms`` and ``rmssd_ms`` in milliseconds, ``pnn50`` in percent (0..100), ``lf_hf`` the LF/HF power ratio
    (only with >= 120 s of clean beats), ``stress_index`` Baevsky's index; each None when not measurable.
    """

    sdnn_ms: float | None
    rmssd_ms: float | None
    pnn50: float | None
    lf_hf: float | None
    stress_index: float | None


@dataclass(frozen=True)
class VitalsState(JsonState):
    """Heart rate, HRV, respiration, SpO2, stress and liveness after the latest frame.

    Attributes
    ----------
    face_present : bool
        A face was found in this frame.
    message : str or None
        What the person should do for a reading (no face, face hard to see, forehead covered), else None.
    heart_rate_bpm : float or None
        Beats per minute; None while warming up or when the pulse is too weak to trust.
    heart_rate_confidence : float
        0..1 (0 without a reading).
    pulse_snr_db : float or None
        Signal-to-noise ratio of the pulse spectrum, dB.
    pulse_waveform : tuple of float
        The last seconds of band-passed pulse, scaled to -1..1 (for plotting).
    pulse_waveform_rate_hz : float
        Samples per second of ``pulse_waveform``.
    warmup_s_left : VitalsWarmup
        Seconds of face data each vital still needs.
    hrv : HrvSummary or None
        None until ~30 s of clean beats.
    respiration_rate_bpm : float or None
        Breaths per minute.
    spo2_percent : float or None
        Experimental blood-oxygen estimate, percent.
    spo2_calibrated : bool
        The SpO2 mapping was calibrated for this camera (else the generic one).
    stress : StressEstimate or None
        ``level`` (low / moderate / high), ``score`` 0..100 and the ``basis`` used.
    liveness : bool or None
        A living face (pulse or natural motion); None while neither cue has answered.
    method : str
        The pulse method's name.
    """

    face_present: bool
    message: str | None
    heart_rate_bpm: float | None
    heart_rate_confidence: float
    pulse_snr_db: float | None
    pulse_waveform: tuple[float, ...]
    pulse_waveform_rate_hz: float
    warmup_s_left: VitalsWarmup
    hrv: HrvSummary | None
    respiration_rate_bpm: float | None
    spo2_percent: float | None
    spo2_calibrated: bool
    stress: StressEstimate | None
    liveness: bool | None
    method: str
