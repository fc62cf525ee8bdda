"""Recorded face tracks: what the tracker saw of a clip, frame by frame, kept small enough to store and replay.

A :class:`FaceTrack` holds, per frame, the time, whether a face was found, the landmarks the fatigue analyzer
reads (eyes, mouth, nose, chin: :data:`TRACK_LANDMARKS`), the head pose, the face detector's presence score and
the skin ROI's mean colour and skin fraction. :func:`record_track` makes one from a video with the app's own
tracker and ROI code; :func:`replay` turns it back into (packet, face) pairs for the fatigue analyzer. The
benchmark on real recordings (``benchmarks/real_fatigue.py``) and the tests on real recordings
(``tests/data/``) both use it, so a clip is tracked once and its real landmark noise is kept exactly.

Only geometry and colour averages are stored, never pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartmirror.face import FaceObservation, FaceTracker
from smartmirror.fatigue.features import (
    CHIN,
    LEFT_EYE_EAR,
    MOUTH_CORNERS,
    MOUTH_LOWER_MID,
    MOUTH_UPPER_MID,
    NOSE_TIP,
    RIGHT_EYE_EAR,
)
from smartmirror.frames import FramePacket, read_video_packets
from smartmirror.vitals.quality import roi_skin_fraction
from smartmirror.vitals.signal import skin_roi_mean_rgb

#: FaceMesh landmarks kept in a track: the fatigue features' points plus the inner lips (13, 14).
TRACK_LANDMARKS = tuple(
    sorted({*RIGHT_EYE_EAR, *LEFT_EYE_EAR, MOUTH_UPPER_MID, MOUTH_LOWER_MID, *MOUTH_CORNERS, NOSE_TIP, CHIN, 13, 14})
)
#: Landmarks are stored as int16 offsets from the face centre in 1/ :data:`_SUBPIXEL` pixels.
_SUBPIXEL = 32.0
_BLANK = np.zeros((2, 2, 3), dtype=np.uint8)  # replayed packets carry no pixels


@dataclass
class FaceTrack:
    """Per-frame tracker output of one clip (n frames; face-less frames hold NaN / False).

    Attributes
    ----------
    times_s : ndarray (n,)
        Source-clock frame times, seconds.
    face_found : ndarray (n,) bool
    landmarks_px : ndarray (n, len(TRACK_LANDMARKS), 2) float32
        x, y in pixels of :data:`TRACK_LANDMARKS`.
    pose_deg : ndarray (n, 3) float32
        Yaw, pitch, roll, degrees.
    presence : ndarray (n,) float32
        Face-detector confidence 0..1.
    skin_fraction : ndarray (n,) float32
        Share of the forehead and cheek pixels that look like the person's skin (the obstruction test,
        :func:`smartmirror.vitals.quality.roi_skin_fraction`).
    rgb : ndarray (n, 3) float32
        Mean R, G, B of the skin ROI (0..255).
    image_size : tuple of int
        (height, width) of the frames.
    """

    times_s: np.ndarray
    face_found: np.ndarray
    landmarks_px: np.ndarray
    pose_deg: np.ndarray
    presence: np.ndarray
    skin_fraction: np.ndarray
    rgb: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.times_s)

    def save(self, path: str | Path) -> None:
        """Write a compressed .npz (landmarks as sub-pixel int16 offsets from each frame's centre)."""
        centre = np.zeros((len(self), 2))
        centre[self.face_found] = self.landmarks_px[self.face_found].mean(axis=1)
        offsets = np.nan_to_num(self.landmarks_px - centre[:, None, :]) * _SUBPIXEL
        np.savez_compressed(
            path,
            times_s=self.times_s.astype(np.float64),
            face_found=self.face_found.astype(bool),
            centre_px=centre.astype(np.float32),
            offsets=np.clip(np.round(offsets), -32767, 32767).astype(np.int16),
            pose_deg=self.pose_deg.astype(np.float16),
            presence=self.presence.astype(np.float16),
            skin_fraction=self.skin_fraction.astype(np.float16),
            rgb=self.rgb.astype(np.float32),
            image_size=np.array(self.image_size, dtype=np.int32),
            landmark_ids=np.array(TRACK_LANDMARKS, dtype=np.int16),
        )

    @classmethod
    def load(cls, path: str | Path) -> FaceTrack:
        """Read a track written by :meth:`save`."""
        with np.load(path) as data:
            if tuple(data["landmark_ids"].tolist()) != TRACK_LANDMARKS:
                raise ValueError(f"{path}: the track's landmark set differs from this version's")
            found = data["face_found"].astype(bool)
            landmarks = data["centre_px"][:, None, :] + data["offsets"].astype(np.float32) / _SUBPIXEL
            landmarks[~found] = np.nan
            return cls(
                times_s=data["times_s"].astype(np.float64),
                face_found=found,
                landmarks_px=landmarks.astype(np.float32),
                pose_deg=data["pose_deg"].astype(np.float32),
                presence=data["presence"].astype(np.float32),
                skin_fraction=data["skin_fraction"].astype(np.float32),
                rgb=data["rgb"].astype(np.float32),
                image_size=tuple(int(v) for v in data["image_size"]),
            )

    def clip(self, start_s: float, end_s: float) -> FaceTrack:
        """The frames with start_s <= t < end_s (times kept as they are)."""
        keep = (self.times_s >= start_s) & (self.times_s < end_s)
        return FaceTrack(self.times_s[keep], self.face_found[keep], self.landmarks_px[keep], self.pose_deg[keep],
                         self.presence[keep], self.skin_fraction[keep], self.rgb[keep], self.image_size)


def record_track(path: str | Path, max_seconds: float | None = None) -> FaceTrack:
    """Track a video with the app's FaceTracker and skin ROI; one row per decoded frame."""
    ids = list(TRACK_LANDMARKS)
    times, found, marks, pose, presence, skin, rgb = [], [], [], [], [], [], []
    size = (0, 0)
    with FaceTracker(static_image_mode=False) as tracker:
        for packet in read_video_packets(path, max_seconds=max_seconds):
            size = packet.image.shape[:2]
            face = tracker.process(packet.image)
            times.append(packet.t)
            found.append(face is not None)
            if face is None:
                marks.append(np.full((len(ids), 2), np.nan, np.float32))
                pose.append((np.nan,) * 3)
                presence.append(np.nan)
                skin.append(np.nan)
                rgb.append((np.nan,) * 3)
                continue
            sample = skin_roi_mean_rgb(packet.image, face)
            marks.append(face.landmarks_px[ids, :2])
            pose.append((face.yaw_deg, face.pitch_deg, face.roll_deg))
            presence.append(face.presence_score)
            skin.append(roi_skin_fraction(packet.image, face))
            rgb.append(sample.rgb)
    return FaceTrack(
        times_s=np.asarray(times, np.float64),
        face_found=np.asarray(found, bool),
        landmarks_px=np.asarray(marks, np.float32).reshape(len(times), len(ids), 2),
        pose_deg=np.asarray(pose, np.float32).reshape(len(times), 3),
        presence=np.asarray(presence, np.float32),
        skin_fraction=np.asarray(skin, np.float32),
        rgb=np.asarray(rgb, np.float32).reshape(len(times), 3),
        image_size=(int(size[0]), int(size[1])),
    )


def replay(track: FaceTrack) -> Iterator[tuple[FramePacket, FaceObservation | None]]:
    """(packet, face) pairs of a track for the fatigue analyzer: 478-point landmarks with the tracked points set
    (the others zero), pixel-less packets at the recorded times."""
    ids = np.array(TRACK_LANDMARKS)
    for i, t in enumerate(track.times_s):
        packet = FramePacket(t=float(t), image=_BLANK, index=i)
        if not track.face_found[i]:
            yield packet, None
            continue
        landmarks = np.zeros((478, 3), dtype=np.float32)
        landmarks[ids, :2] = track.landmarks_px[i]
        xy = track.landmarks_px[i]
        x0, y0 = np.floor(xy.min(axis=0)).astype(int)
        x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
        yaw, pitch, roll = (float(v) for v in track.pose_deg[i])
        yield packet, FaceObservation(
            landmarks_px=landmarks, bbox=(int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)),
            presence_score=float(track.presence[i]), num_faces=1, pose_deg=(yaw, pitch, roll),
            image_size=track.image_size,
        )
