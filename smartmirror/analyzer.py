"""The small protocol every analyzer shares (emotion, fatigue, vitals, identity).

An analyzer is fed one frame at a time, in source-clock order, together with the face tracker's observation of
that frame (``None`` when no face was found). It keeps its own temporal state and answers two questions:

- ``update`` returns the latest JSON-able state after this frame (what the live UI and API show), or ``None``
  when it has nothing to say yet;
- ``summary`` returns the clip-level section of the report (keys as in DESIGN.md), or ``None``.

Configuration is stored as given in ``__init__``; runtime state is created in ``reset`` and ends in ``_``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket

State = dict[str, Any]


@runtime_checkable
class Analyzer(Protocol):
    """What the engine, the clip report and the API call on every analyzer."""

    name: str

    def reset(self) -> None:
        """Forget everything learned from earlier frames (new person, new clip)."""

    def update(self, packet: FramePacket, face: FaceObservation | None) -> State | None:
        """Consume one frame; return the latest state (JSON-able) or None."""

    def summary(self) -> State | None:
        """Return the clip-level report section, or None when nothing was measured."""
