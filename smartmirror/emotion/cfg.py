"""An emotion model's input contract (:class:`ModelCfg`), importable without torch (the ONNX path reads it too)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from smartmirror.emotion.labels import FER_LABELS


@dataclass(frozen=True)
class ModelCfg:
    """A model's weight source and input contract.

    Attributes
    ----------
    file : str or None
        Weight file under ``weights/`` (None: no bundled weights, random init only).
    input_size : tuple of int
        (height, width) in pixels of the face crop the model takes.
    in_channels : int
        1 for grey input, 3 for RGB.
    mean, std : float
        Pixels scaled to [0, 1] are normalised as ``(x - mean) / std`` (0.5, 0.5 gives [-1, 1]).
    labels : tuple of str
        Class names in output order.
    face_scale : float
        Side of the square crop as a multiple of the face size (see ``smartmirror.emotion.crop``).
    """

    file: str | None = None
    input_size: tuple[int, int] = (64, 64)
    in_channels: int = 1
    mean: float = 0.5
    std: float = 0.5
    labels: tuple[str, ...] = FER_LABELS
    face_scale: float = 1.0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCfg:
        """Rebuild from ``asdict`` output (lists back to tuples; unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**clean)
