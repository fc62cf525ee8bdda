"""Drawing the mirror view: flip the frame and draw the newest face overlay and labels (pure numpy/OpenCV, fast).

Everything here runs inside the video callback, so it stays well under a millisecond at 640x480 and makes few
calls that release the GIL (each may wait for the analyzer threads to hand it back): the landmarks are set as
pixel blocks in one vectorised assignment, the regions are one ``polylines`` call, and text is rendered once per
distinct string and pasted with numpy.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from smartmirror.live.tracked import Overlay

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
    y = 6
    for line in lines:
        y = _paste(view, _text_patch(line, 0.55, TEXT_BGR, None), 6, y) + 4
    if demo:
        patch = _text_patch("DEMO (synthetic clip)", 0.8, TEXT_BGR, DEMO_BGR)
        _paste(view, patch, width - patch[0].shape[1] - 8, 8)
    return view


@functools.lru_cache(maxsize=256)
def _text_patch(
    text: str, scale: float, color: tuple[int, int, int], background: tuple[int, int, int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(patch, mask) of ``text`` drawn once: outlined in black on a transparent patch, or on a filled box."""
    thickness = 2 if background is not None else 1
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = 6 if background is not None else 3
    patch = np.zeros((text_h + baseline + 2 * pad, text_w + 2 * pad, 3), np.uint8)
    origin = (pad, pad + text_h)
    if background is not None:
        patch[:] = background
        cv2.putText(patch, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
        return patch, np.ones(patch.shape[:2], bool)
    outline = np.zeros(patch.shape[:2], np.uint8)
    cv2.putText(outline, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness + 2, cv2.LINE_AA)
    cv2.putText(patch, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    patch.setflags(write=False)
    return patch, outline > 0


def _paste(view: np.ndarray, patch_mask: tuple[np.ndarray, np.ndarray], x: int, y: int) -> int:
    """Copy a text patch into ``view`` at (x, y) where its mask is set (clipped); returns the patch's bottom y."""
    patch, mask = patch_mask
    height, width = view.shape[:2]
    h = min(patch.shape[0], height - y)
    w = min(patch.shape[1], width - x)
    if h > 0 and w > 0 and x >= 0 and y >= 0:
        region = view[y:y + h, x:x + w]
        region[mask[:h, :w]] = patch[:h, :w][mask[:h, :w]]
    return y + patch.shape[0]
