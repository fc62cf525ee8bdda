"""Test helper: fatigue landmark sequences made from a real FaceMesh observation (the astronaut portrait).

The face's real 478 landmarks are edited per frame:

- eyes: each upper-lid point of the eye contour moves towards its lower-lid partner by the closure fraction
  (0 open, 1 the lids meet), so EAR falls in proportion;
- mouth: the lower lip and everything below it (chin, jaw) move down by ``opening`` x the mouth width, fading
  towards the jaw angles, as when the jaw drops;
- head: the 3-D landmarks rotate about the face centre (pitch, yaw) and the pose is re-measured with the
  tracker's own solvePnP, so nods and turns arrive as the analyzer would see them.

A timeline of :class:`Episode` objects says what happens when; :func:`build_sequence` samples it at jittered
frame times and returns (FramePacket, FaceObservation | None) pairs; the truth functions give what the analyzer
should measure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from smartmirror.face import FaceObservation, head_pose_deg
from smartmirror.frames import FramePacket

#: (upper lid, lower lid) contour points of each eye, paired from corner to corner.
EYELID_PAIRS = {
    "right": ((246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155)),
    "left": ((466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382)),
}
_UPPER = np.array([u for pairs in EYELID_PAIRS.values() for u, _ in pairs])
_LOWER = np.array([lo for pairs in EYELID_PAIRS.values() for _, lo in pairs])
#: Lower lip, outer and inner contours (the corners 61 and 291 stay).
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)

_TINY_IMAGE = np.zeros((2, 2, 3), dtype=np.uint8)  # the fatigue analyzer reads landmarks, not pixels


def close_eyes(landmarks: np.ndarray, closure: float) -> np.ndarray:
    """Landmarks with both upper lids moved ``closure`` (0..1) of the way to the lower lids."""
    out = landmarks.copy()
    out[_UPPER, :2] += closure * (landmarks[_LOWER, :2] - landmarks[_UPPER, :2])
    return out


def _lower_face_weights(landmarks: np.ndarray) -> np.ndarray:
    """0..1 per landmark: 1 for the lower lip and the chin, fading towards the jaw angles, 0 above the mouth."""
    xy = landmarks[:, :2]
    lower_lip_top = xy[list(LOWER_LIP), 1].min()
    centre_x = xy[[61, 291], 0].mean()
    half_face = (xy[:, 0].max() - xy[:, 0].min()) / 2
    below = xy[:, 1] >= lower_lip_top - 0.5
    lateral = np.clip(1.0 - 0.7 * ((xy[:, 0] - centre_x) / half_face) ** 2, 0.0, 1.0)
    weights = np.where(below, lateral, 0.0)
    weights[list(LOWER_LIP)] = 1.0
    return weights


def open_mouth(landmarks: np.ndarray, opening: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Landmarks with the jaw dropped by ``opening`` x the mouth-corner width (0 closed, ~0.6 a yawn)."""
    if weights is None:
        weights = _lower_face_weights(landmarks)
    width = float(np.linalg.norm(landmarks[61, :2] - landmarks[291, :2]))
    out = landmarks.copy()
    out[:, 1] += opening * width * weights
    return out


def rotate_head(landmarks: np.ndarray, pitch_deg: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    """Landmarks of the head pitched (positive: looking up) and turned (positive: to the subject's left) about
    the face centre, by an orthographic rotation of the 3-D points (z scaled like x, as FaceMesh gives it)."""
    if pitch_deg == 0 and yaw_deg == 0:
        return landmarks.copy()
    pts = landmarks.astype(np.float64)
    centre = pts.mean(axis=0)
    p = pts - centre
    a = math.radians(-pitch_deg)  # image y points down: looking down moves the near (z < 0) nose down
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    b = math.radians(-yaw_deg)
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    return ((p @ (ry @ rx).T) + centre).astype(np.float32)


def make_face(
    base: FaceObservation,
    *,
    eye_closure: float = 0.0,
    mouth_opening: float = 0.0,
    pitch_deg: float = 0.0,
    yaw_deg: float = 0.0,
    noise_px: float = 0.0,
    rng: np.random.Generator | None = None,
    mouth_weights: np.ndarray | None = None,
) -> FaceObservation:
    """A FaceObservation of ``base`` with eyes, jaw and head moved (pose re-measured when the head turns)."""
    landmarks = base.landmarks_px
    if eye_closure:
        landmarks = close_eyes(landmarks, eye_closure)
    if mouth_opening:
        landmarks = open_mouth(landmarks, mouth_opening, mouth_weights)
    yaw, pitch, roll = base.yaw_deg, base.pitch_deg, base.roll_deg
    if pitch_deg or yaw_deg:
        landmarks = rotate_head(landmarks, pitch_deg, yaw_deg)
        yaw, pitch, roll = head_pose_deg(landmarks, base.image_size)
    if noise_px:
        rng = rng if rng is not None else np.random.default_rng(0)
        landmarks = landmarks.copy()
        landmarks[:, :2] += rng.normal(0.0, noise_px, size=(landmarks.shape[0], 2)).astype(np.float32)
    if landmarks is base.landmarks_px:
        landmarks = landmarks.copy()
    return dataclasses.replace(
        base, landmarks_px=landmarks.astype(np.float32), pose_deg=(yaw, pitch, roll), _masks={}
    )


@dataclass(frozen=True)
class Episode:
    """One thing happening on the timeline.

    kind : "closure" (eyes; ``duration_s`` is the time at least half closed, ``amount`` the peak closure),
        "yawn" (``duration_s`` the time the opening is at least half of ``amount``), "talk" (the mouth opening
        oscillates between ``base`` and ``base + amount`` at ``rate_hz``), "nod" (pitch drops by ``amount``
        degrees), "turn" (yaw ``amount`` degrees), "no_face".
    """

    kind: str
    start_s: float
    duration_s: float
    amount: float = 1.0
    rate_hz: float = 4.0
    base: float = 0.0


def _trapezoid(t: float, start: float, duration: float, rise: float, fall: float) -> float:
    """0..1: rising over ``rise`` seconds centred on ``start``, falling centred on ``start + duration``."""
    end = start + duration
    if t <= start - rise / 2 or t >= end + fall / 2:
        return 0.0
    if t < start + rise / 2:
        return (t - (start - rise / 2)) / rise
    if t > end - fall / 2:
        return ((end + fall / 2) - t) / fall
    return 1.0


def eye_closure_at(t: float, episodes: list[Episode]) -> float:
    """The builder's eye closure (0..1) at time ``t``."""
    value = 0.0
    for e in episodes:
        if e.kind == "closure":
            rise = min(0.06, e.duration_s * 0.6)
            fall = min(0.10, e.duration_s * 0.8)
            value = max(value, e.amount * _trapezoid(t, e.start_s, e.duration_s, rise, fall))
    return value


def mouth_opening_at(t: float, episodes: list[Episode]) -> float:
    """The builder's jaw opening (fraction of the mouth width) at time ``t``."""
    value = 0.0
    for e in episodes:
        if e.kind == "yawn":
            value = max(value, e.amount * _trapezoid(t, e.start_s, e.duration_s, 0.8, 0.8))
        elif e.kind == "talk" and e.start_s <= t < e.start_s + e.duration_s:
            phase = 2 * math.pi * e.rate_hz * (t - e.start_s)
            value = max(value, e.base + e.amount * (0.5 - 0.5 * math.cos(phase)))
    return value


def head_at(t: float, episodes: list[Episode]) -> tuple[float, float]:
    """(pitch_deg, yaw_deg) offsets at time ``t``."""
    pitch = yaw = 0.0
    for e in episodes:
        if e.kind == "nod":
            pitch -= e.amount * _trapezoid(t, e.start_s, e.duration_s, 0.6, 0.3)
        elif e.kind == "turn":
            yaw += e.amount * _trapezoid(t, e.start_s, e.duration_s, 0.3, 0.3)
    return pitch, yaw


def face_visible(t: float, episodes: list[Episode]) -> bool:
    return not any(e.kind == "no_face" and e.start_s <= t < e.start_s + e.duration_s for e in episodes)


def frame_times(duration_s: float, fps: float, *, jitter: float = 0.3, seed: int = 0) -> np.ndarray:
    """Frame times over ``duration_s`` at nominal ``fps``, each moved by up to ``jitter`` of a frame interval."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fps)
    times = (np.arange(n) + rng.uniform(-jitter, jitter, n)) / fps
    times[0] = 0.0
    return np.maximum.accumulate(times + np.arange(n) * 1e-9)


def build_sequence(
    base: FaceObservation,
    episodes: list[Episode],
    duration_s: float,
    fps: float,
    *,
    seed: int = 0,
    jitter: float = 0.3,
    noise_px: float = 0.1,
    eye_rest: float = 0.0,
) -> list[tuple[FramePacket, FaceObservation | None]]:
    """Frames of the timeline at jittered times; ``eye_rest`` is the closure of the resting eye (narrow eyes)."""
    rng = np.random.default_rng(seed + 1)
    weights = _lower_face_weights(base.landmarks_px)
    frames = []
    for i, t in enumerate(frame_times(duration_s, fps, jitter=jitter, seed=seed)):
        t = float(t)
        face = None
        if face_visible(t, episodes):
            closure = eye_rest + (1.0 - eye_rest) * eye_closure_at(t, episodes)
            pitch, yaw = head_at(t, episodes)
            face = make_face(
                base,
                eye_closure=closure,
                mouth_opening=mouth_opening_at(t, episodes),
                pitch_deg=pitch,
                yaw_deg=yaw,
                noise_px=noise_px,
                rng=rng,
                mouth_weights=weights,
            )
        frames.append((FramePacket(t=t, image=_TINY_IMAGE, index=i), face))
    return frames


def true_time_above(episodes: list[Episode], level: float, t0: float, t1: float, step: float = 1e-3) -> float:
    """Seconds in [t0, t1] with the builder's eye closure at or above ``level`` (dense sampling)."""
    grid = np.arange(t0, t1, step)
    return float(sum(eye_closure_at(float(t), episodes) >= level for t in grid) * step)


def paint_closed_eyes(image_bgr: np.ndarray, face: FaceObservation) -> np.ndarray:
    """A copy of a real photo with both eyes painted shut: skin over the eye opening, a lash line on the lower
    lid (FaceMesh then places the lids together on the real pixels)."""
    out = image_bgr.astype(np.float64)
    lower_lids = {"right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133), "left_eye": (362, 382, 381, 380, 374,
                                                                                          373, 390, 249, 263)}
    for region, lower in lower_lids.items():
        polygon = face.region_polygon(region).astype(np.float64)
        centre = polygon.mean(axis=0)
        grown = np.round((polygon - centre) * 1.35 + centre).astype(np.int32)
        x, y, w, h = cv2.boundingRect(grown)
        skin = np.median(image_bgr[y + h + 2 : y + 2 * h + 2, x : x + w].reshape(-1, 3), axis=0)
        mask = np.zeros(image_bgr.shape[:2], np.uint8)
        cv2.fillPoly(mask, [grown], 255)
        alpha = cv2.GaussianBlur(mask, (7, 7), 0).astype(np.float64)[..., None] / 255.0
        out = out * (1 - alpha) + skin[None, None, :] * alpha
        lash = np.round(face.landmarks_px[list(lower), :2]).astype(np.int32)
        out_u8 = np.clip(out, 0, 255).astype(np.uint8)
        cv2.polylines(out_u8, [lash], False, (40, 40, 60), 2, cv2.LINE_AA)
        out = out_u8.astype(np.float64)
    return np.clip(out, 0, 255).astype(np.uint8)
