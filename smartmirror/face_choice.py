"""One rule for frames with several faces, shared by the clip report, REST sessions and the live engine.

The mirror measures one person: the largest face (the tracker's main face, nearest the camera). When more than
one face is seen, that face is still measured, and the answer says so (``faces_seen`` and a ``several_faces``
warning), never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smartmirror.face import FaceObservation

#: The warning's machine-readable code.
SEVERAL_FACES = "several_faces"


@dataclass(frozen=True)
class FaceChoice:
    """Which face of a frame is measured, and what to tell the user about the others."""

    face: FaceObservation | None      # the measured face (the largest), None when no face was seen
    faces_seen: int
    warning: dict[str, str] | None    # {"code": "several_faces", "message": ...} when faces_seen > 1


def several_faces_message(faces_seen: int) -> str:
    return f"{faces_seen} faces seen; measuring the largest (nearest) one only"


def choose_face(observed: FaceObservation | None) -> FaceChoice:
    """The rule: measure the largest face; flag frames with more than one."""
    if observed is None:
        return FaceChoice(None, 0, None)
    seen = max(1, int(observed.num_faces))
    warning = {"code": SEVERAL_FACES, "message": several_faces_message(seen)} if seen > 1 else None
    return FaceChoice(observed, seen, warning)


class FacesTally:
    """Counts over a clip: frames with a face, frames with several, the most faces in one frame."""

    def __init__(self) -> None:
        self.frames_with_face = 0
        self.frames_with_several = 0
        self.max_faces_seen = 0

    def add(self, choice: FaceChoice) -> None:
        self.frames_with_face += choice.face is not None
        self.frames_with_several += choice.warning is not None
        self.max_faces_seen = max(self.max_faces_seen, choice.faces_seen)

    def summary(self) -> dict:
        """``{"max_faces_seen", "frames_with_several_faces", "warning"}`` (warning None with one face)."""
        warning = None
        if self.frames_with_several:
            share = self.frames_with_several / max(1, self.frames_with_face)
            warning = {"code": SEVERAL_FACES,
                       "message": f"{self.max_faces_seen} faces seen in {self.frames_with_several} frames "
                                  f"({100 * share:.0f} % of those with a face); the largest face was measured"}
        return {"max_faces_seen": self.max_faces_seen, "frames_with_several_faces": self.frames_with_several,
                "warning": warning}
