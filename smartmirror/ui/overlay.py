"""Drawing the mirror view: flip the frame and draw the newest face overlay and labels (pure numpy/OpenCV, fast).

Everything here runs inside the video callback, so it stays well under a millisecond or two at 640x480: the
landmarks are set as pixel blocks in one vectorised assignment and the regions are one ``polylines`` call.
"""

from __future__ import annotations

import cv2
import numpy as np

from smartmirror.engine import Overlay

LANDMARK_BGR = (80, 255, 120)
REGION_BGR = (255, 200, 0)
TEXT_BGR = (255, 255, 255)
DEMO_BGR = (0, 140, 255)


def mirror_view(
    image_bgr: np.ndarray,
    overlay: Overlay | None,
    *,
    show_landmarks: bool = True,
    show_regions: bool = True,
    lines: tuple[str, ...] = (),
    demo: bool = False,
) -> np.ndarray:
    """A new image: ``image_bgr`` flipped left-right (a mirror) with the overlay and text drawn on it.

    Parameters
    ----------
    image_bgr : ndarray, (height, width, 3) uint8
        The camera frame as analysed (not flipped); it is not modified.
    overlay : Overlay or None
        The newest tracked face, in the unflipped frame's pixels; skipped when its frame size differs.
    lines : tuple of str
        Short status lines drawn at the top left (e.g. the measured frame rate).
    demo : bool
        Draw a "DEMO" banner (the bundled synthetic clip is playing, not a camera).
    """
    view = cv2.flip(image_bgr, 1)
    height, width = view.shape[:2]
    if overlay is not None and overlay.image_size == (height, width) and overlay.landmarks_xy is not None:
        if show_regions and overlay.regions:
            polygons = []
            for polygon in overlay.regions.values():
                mirrored = polygon.copy()
                mirrored[:, 0] = width - 1 - mirrored[:, 0]
                polygons.append(mirrored.reshape(-1, 1, 2).astype(np.int32))
            cv2.polylines(view, polygons, isClosed=True, color=REGION_BGR, thickness=1, lineType=cv2.LINE_AA)
        if show_landmarks:
            xs = np.clip(np.round(width - 1 - overlay.landmarks_xy[:, 0]).astype(np.int32), 0, width - 2)
            ys = np.clip(np.round(overlay.landmarks_xy[:, 1]).astype(np.int32), 0, height - 2)
            color = np.array(LANDMARK_BGR, dtype=np.uint8)
            view[ys, xs] = color
            view[ys + 1, xs] = color
            view[ys, xs + 1] = color
            view[ys + 1, xs + 1] = color
    y = 22
    for line in lines:
        cv2.putText(view, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(view, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TEXT_BGR, 1, cv2.LINE_AA)
        y += 22
    if demo:
        text = "DEMO (synthetic clip)"
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
        x0 = width - text_w - 20
        cv2.rectangle(view, (x0 - 8, 8), (width - 8, 16 + text_h + 8), DEMO_BGR, thickness=-1)
        cv2.putText(view, text, (x0, 16 + text_h), cv2.FONT_HERSHEY_SIMPLEX, 0.8, TEXT_BGR, 2, cv2.LINE_AA)
    return view
