"""SpO2 by the ratio of ratios of red and blue (Kong et al. 2013), with a per-user linear calibration.

``R = (AC_red / DC_red) / (AC_blue / DC_blue)`` and ``SpO2 = A - B * R``. Camera channels are not the red and
infrared of a pulse oximeter, so A and B depend on the camera, the light and the skin: without a calibration
against a reference oximeter the number is a rough **estimate** and is flagged ``calibrated: false``.
:func:`calibrate` fits A and B by least squares from (ratio, reference SpO2) pairs and saves them as JSON in the
user's config folder (``platformdirs``; ``SMARTMIRROR_SPO2_CALIBRATION`` or the ``path`` argument override).
Readings with too weak a pulse are None.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Uncalibrated default (the common open-source camera-SpO2 constants); readings made with it are estimates.
DEFAULT_A = 100.0
DEFAULT_B = 5.0
#: Reported range, percent; values outside are clipped.
SPO2_RANGE = (70.0, 100.0)
#: Below this heart-rate confidence (0..1) no SpO2 is given.
SPO2_QUALITY_GATE = 0.6


@dataclass(frozen=True)
class SpO2Calibration:
    """Linear map from the ratio of ratios to SpO2: ``spo2 = a - b * ratio`` (percent)."""

    a: float = DEFAULT_A
    b: float = DEFAULT_B
    calibrated: bool = False
    readings: int = 0          # reference readings the fit used
    rms_error: float | None = None  # percent, of the fit on its own readings


@dataclass(frozen=True)
class SpO2Estimate:
    """One SpO2 reading."""

    percent: float | None
    ratio: float | None
    calibrated: bool
    label: str                 # "calibrated" or "estimate (uncalibrated)"

    def report(self) -> dict:
        return asdict(self)


def calibration_path(path: str | Path | None = None) -> Path:
    """Where the calibration lives: ``path``, else ``$SMARTMIRROR_SPO2_CALIBRATION``, else the user config dir."""
    if path is not None:
        return Path(path)
    override = os.environ.get("SMARTMIRROR_SPO2_CALIBRATION")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("smartmirror")) / "spo2_calibration.json"


def load_calibration(path: str | Path | None = None) -> SpO2Calibration:
    """The saved calibration, or the uncalibrated default when none is saved (or the file is unreadable)."""
    file = calibration_path(path)
    try:
        data = json.loads(file.read_text())
        return SpO2Calibration(a=float(data["a"]), b=float(data["b"]), calibrated=True,
                               readings=int(data.get("readings", 0)), rms_error=data.get("rms_error"))
    except (OSError, ValueError, KeyError, TypeError):
        return SpO2Calibration()


def calibrate(
    ratios: Sequence[float], reference_percent: Sequence[float], *, path: str | Path | None = None,
    save: bool = True,
) -> SpO2Calibration:
    """Fit ``spo2 = a - b * ratio`` to reference oximeter readings and (by default) save it.

    Parameters
    ----------
    ratios : sequence of float
        Ratios of ratios measured by :func:`ratio_of_ratios` (same camera and light as later use).
    reference_percent : sequence of float
        The oximeter's SpO2 at the same moments, percent.
    path : optional
        Where to save (see :func:`calibration_path`).

    Raises
    ------
    ValueError
        With fewer than 2 readings, mismatched lengths, non-finite values, or ratios that do not vary.
    """
    x = np.asarray(ratios, dtype=np.float64)
    y = np.asarray(reference_percent, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("ratios and reference_percent must be 1-D sequences of the same length")
    if len(x) < 2:
        raise ValueError("calibration needs at least 2 reference readings")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("calibration readings must be finite numbers")
    if np.ptp(x) <= 1e-9:
        raise ValueError("the ratios do not vary; calibration needs readings at different saturations")
    slope, intercept = np.polyfit(x, y, 1)
    rms = float(np.sqrt(np.mean((intercept + slope * x - y) ** 2)))
    calibration = SpO2Calibration(a=float(intercept), b=float(-slope), calibrated=True, readings=len(x),
                                  rms_error=round(rms, 3))
    if save:
        file = calibration_path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        payload = {"a": calibration.a, "b": calibration.b, "readings": calibration.readings, "rms_error": rms}
        file.write_text(json.dumps(payload, indent=1))
    return calibration


def ratio_of_ratios(amplitudes_rgb: np.ndarray) -> float | None:
    """``(AC/DC red) / (AC/DC blue)`` from the pulse's relative channel amplitudes (R, G, B).

    ``amplitudes_rgb`` are AC/DC amplitudes of the same pulse in each channel (for instance
    :attr:`smartmirror.vitals.colour_signature.PulseSignature.amplitudes_rgb`). None when the blue amplitude is ~0.
    """
    amplitudes = np.abs(np.asarray(amplitudes_rgb, dtype=np.float64))
    if amplitudes.shape != (3,) or not np.all(np.isfinite(amplitudes)) or amplitudes[2] <= 1e-12:
        return None
    return float(amplitudes[0] / amplitudes[2])


def estimate_spo2(ratio: float | None, *, quality: float, calibration: SpO2Calibration | None = None
                  ) -> SpO2Estimate:
    """SpO2 (percent) from a ratio of ratios; None when the ratio is missing or ``quality`` < the gate."""
    calibration = calibration or SpO2Calibration()
    label = "calibrated" if calibration.calibrated else "estimate (uncalibrated)"
    if ratio is None or not np.isfinite(ratio) or quality < SPO2_QUALITY_GATE:
        return SpO2Estimate(None, None if ratio is None else round(ratio, 4), calibration.calibrated, label)
    percent = float(np.clip(calibration.a - calibration.b * ratio, *SPO2_RANGE))
    return SpO2Estimate(round(percent, 1), round(ratio, 4), calibration.calibrated, label)
