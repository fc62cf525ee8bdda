"""The registry of pulse-extraction methods, selectable by name (``--method``).

Two kinds of method exist:

- ``"trace"``: unsupervised signal methods (GREEN, CHROM, POS, ICA) that map skin-ROI mean colours to a pulse,
  ``fn(rgb: ndarray (n, 3), *, sampling_rate: float) -> ndarray (n,)``;
- ``"frames"``: learned models that look at face crops,
  ``fn(frames_rgb: ndarray (n, h, w, 3) uint8, *, sampling_rate: float) -> ndarray (n,)``; the model's own
  preprocessing (crop size, frame rate, normalisation, chunking) happens inside ``fn``.

``realtime`` says whether the method keeps up with 30 fps on 2 cores (the live app offers only those).
"""

from __future__ import annotations

# The built-in methods register themselves when their modules are imported: the signal methods (rppg) and the
# learned ones (neural). Both register in method_registry, so importing them here makes no circle.
from smartmirror.vitals import neural, rppg  # noqa: F401
from smartmirror.vitals.method_registry import PulseFn, PulseMethod, register_method, registered, registered_methods

__all__ = ["PulseFn", "PulseMethod", "get_method", "list_methods", "register_method"]


def list_methods(kind: str | None = None, realtime_only: bool = False) -> list[str]:
    """Names of the registered methods, optionally only of one kind or only those fast enough for live use."""
    return sorted(
        name
        for name, m in registered_methods().items()
        if (kind is None or m.kind == kind) and (not realtime_only or m.realtime)
    )


def get_method(name: str) -> PulseMethod:
    """Look a method up by name (case-insensitive).

    Raises
    ------
    ValueError
        Listing the valid names when ``name`` is unknown.
    """
    return registered(name)
