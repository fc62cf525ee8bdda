"""The browser's skin meter: the pulse's skin colour measured on the raw camera frame, before VP8.

A real pulse changes the skin's colour by 0.1-1 %; the browser's VP8 encoder (its quantiser and its temporal
denoiser) loses part of that before the frames reach Python. So with the browser webcam a small component
(``skin_meter/``, plain JavaScript, no network) sits in the page beside streamlit-webrtc's:

1. it wraps the webrtc component's ``getUserMedia`` and puts a transform between the camera and the encoder
   (``MediaStreamTrackProcessor`` -> ``MediaStreamTrackGenerator``), so every raw frame passes through it;
2. on each frame it takes the mean colour inside the skin ROI mask that this module sent it (the whole face less
   eyes, brows and mouth, from this computer's face tracker: the page runs no landmarker) and writes it, with the
   mask's version, into a strip below the picture (:mod:`smartmirror.ui.frame_tag`). The frame it sends on is
   I420 made from the camera's own bytes (a canvas frame would be encoded as BT.709 full range), and it reads
   RGB from them with the integers Python decodes with (:func:`smartmirror.ui.session.received_bgr`);
3. the video callback splits the strip off (the mirror, the tracker and every analyzer see the plain picture)
   and hands the colour to the vitals with the frame (``FramePacket.skin_rgb``).

The mask is sent about twice a second and only moves when the face moved (:class:`SkinMeterMasks`), so it lags
the face. The vitals therefore keep measuring the frame's own ROI on the encoded picture, and use the meter to
restore what the encoder took: per channel, the raw frame's colour inside the meter's mask over the encoded
frame's colour inside the same mask (:func:`smartmirror.vitals.analyzer.with_raw_colour`). The encoded picture
carries the head's motion; the raw one the pulse's 0.1-1 %.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartmirror.vitals.signal import DARK_LUMA_FRACTION, GLARE_LUMA, face_skin_polygons

FRONTEND = Path(__file__).with_name("skin_meter")
#: Mean outline displacement (pixels) that makes a new mask; below it the mask stays put.
MOVE_PX = 1.5


@dataclass(frozen=True)
class MeterMask:
    """One ROI mask for the browser's meter: the face less eyes, brows and mouth, in picture pixels."""

    version: int  # 1..255, wraps
    outline: np.ndarray  # (n, 2) pixels
    holes: tuple[np.ndarray, ...]
    image_size: tuple[int, int]  # (height, width)

    def args(self) -> dict[str, Any]:
        """The component's arguments (JSON)."""
        height, width = self.image_size

        def scaled(points: np.ndarray) -> list[list[float]]:
            return [[round(float(x) / width, 5), round(float(y) / height, 5)] for x, y in points]

        return {"version": self.version, "outline": scaled(self.outline), "holes": [scaled(h) for h in self.holes]}


class SkinMeterMasks:
    """Which mask the browser's meter should use now, and the recent masks by version.

    Called from the page's refresh (twice a second) with the tracker's newest landmarks; a new version is made
    only when the face moved by more than ``move_px`` on average (or reappeared).
    """

    def __init__(self, move_px: float = MOVE_PX, keep: int = 64):
        self.move_px = move_px
        self.keep = keep
        self.current: MeterMask | None = None
        self._versions = itertools.count(0)
        self._recent: dict[int, MeterMask] = {}

    def update(self, landmarks_xy: np.ndarray | None, image_size: tuple[int, int]) -> MeterMask | None:
        """The mask for the newest tracked face (None: no face, the meter stops measuring)."""
        if landmarks_xy is None:
            self.current = None
            return None
        points = np.asarray(landmarks_xy, dtype=np.float32)[:, :2]
        outlines, holes = face_skin_polygons(points)
        outline = outlines[0]
        previous = self.current
        moved = np.inf if previous is None or previous.outline.shape != outline.shape or \
            previous.image_size != image_size else float(np.linalg.norm(outline - previous.outline, axis=1).mean())
        if moved <= self.move_px:
            return previous
        version = next(self._versions) % 255 + 1  # 1..255; 0 is the meter's "no mask"
        mask = MeterMask(version=version, outline=outline, holes=tuple(holes), image_size=image_size)
        self.current = mask
        self._recent[version] = mask
        while len(self._recent) > self.keep:
            self._recent.pop(next(iter(self._recent)))
        return mask

    def mask(self, version: int) -> MeterMask | None:
        """A recent mask by version (None when unknown: too old, or from another session)."""
        return self._recent.get(version)


def meter_settings() -> dict[str, Any]:
    """The thresholds the meter shares with :func:`smartmirror.vitals.signal.skin_roi_mean_rgb`."""
    return {"dark_luma_fraction": DARK_LUMA_FRACTION, "glare_luma": GLARE_LUMA}


_component = None


def skin_meter_enabled(pulse_method: str | None = None) -> bool:
    """Whether the page runs the meter: not with ``SMARTMIRROR_SKIN_METER=0`` (e.g. to compare the paths), nor for
    a learned ``pulse_method``, which reads the face picture, not the skin's mean colour (the meter would only
    cost the page 5-20 ms of a core per frame: with FacePhys a 30 fps camera showed 17.6 fps with it)."""
    from smartmirror.vitals.methods import get_method
    from smartmirror.vitals.rppg import DEFAULT_METHOD

    if get_method(pulse_method or DEFAULT_METHOD).kind == "frames":
        return False
    return os.environ.get("SMARTMIRROR_SKIN_METER", "1").strip().lower() not in ("0", "false", "no", "off")


def render_skin_meter(mask: MeterMask | None, *, key: str = "skin-meter") -> None:
    """Draw the (invisible) meter component with the current mask; it keeps running between refreshes."""
    global _component
    if _component is None:
        import streamlit.components.v1 as components

        _component = components.declare_component("smartmirror_skin_meter", path=str(FRONTEND))
    _component(mask=None if mask is None else mask.args(), settings=meter_settings(), key=key, default=None)
