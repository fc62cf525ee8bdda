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
    frames it did track around it (:func:`between_faces`). Only analyzers whose spec asks for ``every_frame``
    read such packets.
    """

    face: FaceObservation | None = None
    reused_face: bool = False


#: Frames the face tracker skipped that are kept for ``every_frame`` analyzers until the next tracked frame.
MAX_SKIPPED_FRAMES = 15
#: Longest stretch (seconds) between two tracked faces across which a skipped frame's landmarks are interpolated.
MAX_INTERPOLATION_S = 1.0


def between_faces(t: float, before: tuple[float, FaceObservation] | None, after: tuple[float, FaceObservation]
                  ) -> FaceObservation:
    """The face at time ``t`` of a skipped frame: landmarks linearly interpolated between the tracked faces
    before and after it (the one after alone when there is none before, or it is over
    :data:`MAX_INTERPOLATION_S` away).

    A head that moves while the tracker is busy would otherwise leave the skin regions a few pixels off on the
    skipped frames, and that jump is colour noise in the pulse (on a real recording, with FaceMesh on every other
    frame: pulse SNR -0.9 dB interpolated vs -1.5 dB reusing the next face; -0.1 dB with every frame tracked).
    """
    t_after, face_after = after
    if before is None or not t_after - MAX_INTERPOLATION_S <= before[0] < t <= t_after:
        return face_after
    t_before, face_before = before
    if face_before.landmarks_px.shape != face_after.landmarks_px.shape:
        return face_after
    weight = (t - t_before) / (t_after - t_before)
    landmarks = face_before.landmarks_px + weight * (face_after.landmarks_px - face_before.landmarks_px)
    return dataclasses.replace(face_after, landmarks_px=landmarks.astype(face_after.landmarks_px.dtype),
                               _masks={})


@dataclass(frozen=True)
class Overlay:
    """What the video callback draws: the newest tracked face (pixels of the unflipped frame)."""

    landmarks_xy: np.ndarray | None  # (478, 2) float32, or None when no face
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, 2) int32 polygon
    source_t: float = 0.0
    image_size: tuple[int, int] = (0, 0)  # (height, width)


# --- the engine -------------------------------------------------------------------------------------------------
