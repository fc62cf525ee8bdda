"""Frames with their face: the tracker's observation, or, for a frame it skipped while busy, one interpolated
between the tracked frames around it (read only by analyzers that need every frame, the vitals)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket


@dataclass(frozen=True)
class TrackedPacket(FramePacket):
    """A frame with the face tracker's observation of it (``None``: no face).

    ``reused_face``: the tracker was busy when this frame came and skipped it; ``face`` is estimated from the
    frames it did track around it (:func:`smartmirror.face_track.between_faces`). Only analyzers whose spec asks
    for ``every_frame`` read such packets.
    """

    face: FaceObservation | None = None
    reused_face: bool = False

    @classmethod
    def of(cls, packet: FramePacket, face: FaceObservation | None, *, reused_face: bool = False) -> TrackedPacket:
        """``packet`` (every field it carries) with its face."""
        fields = {f.name: getattr(packet, f.name) for f in dataclasses.fields(FramePacket)}
        return cls(**fields, face=face, reused_face=reused_face)


#: Frames the face tracker skipped that are kept for ``every_frame`` analyzers until the next tracked frame.
MAX_SKIPPED_FRAMES = 15

@dataclass(frozen=True)
class Overlay:
    """What the video callback draws: the newest tracked face (pixels of the unflipped frame)."""

    landmarks_xy: np.ndarray | None  # (478, 2) float32, or None when no face
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, 2) int32 polygon
    source_t: float = 0.0
    image_size: tuple[int, int] = (0, 0)  # (height, width)


# --- the engine -------------------------------------------------------------------------------------------------
