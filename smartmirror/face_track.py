"""Cheaper face tracking for the pulse: FaceMesh every few frames, the frames between interpolated or followed.

Offline, the clip report of the learned pulse methods takes FaceMesh on every few frames and interpolates the
landmarks between on the frames' timestamps (:func:`between_faces`, :func:`landmarks_every_for`,
:meth:`smartmirror.pipeline.Pipeline.run`); the live engine interpolates the frames its tracker had no time for.

The pulse needs the skin regions at every frame, not a fresh 478-point mesh. :class:`FlowFaceTracker` runs
MediaPipe FaceMesh (one face, refined landmarks, through :class:`smartmirror.face.FaceTracker`) on every
``mesh_every``-th frame, and on the frames between moves the last mesh with the similarity transform (shift,
rotation, scale) that pyramidal Lucas-Kanade optical flow measures on corner points of the face between the mesh's
frame and the current one. The flow is measured from the mesh's frame each time (never chained frame to frame, so
it does not drift) on a grey crop around the face. A new mesh does not replace the moved one at once: its
difference from where the flow put the face is spread evenly over the frames up to the next mesh, because FaceMesh's
pass-to-pass jitter applied as a step every few frames puts its power into the pulse band. When the flow loses the
face (too few points survive the forward-backward check, or the motion is not a plausible similarity) the mesh
runs at once and is taken as it is; the face detector (the presence score and the count of faces) runs every
``detect_every`` frames.

Between meshes the face keeps its shape: eyes do not blink, the mouth does not move, and the shape (so the head
pose) follows a turning head one mesh interval late. It measured as accurate as interpolation for the learned
methods but costs 2-3 ms of CPU a frame, so the report interpolates; ``benchmarks/real_eval.py --tracker flow`` and
``benchmarks/tracker_accuracy.py`` measure it on real recordings.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

import cv2
import numpy as np

from smartmirror.face import REGIONS, FaceObservation, FaceTracker, check_bgr_image, observation_from_landmarks
from smartmirror.fatigue.features import eye_openness

#: Landmarks whose convex hull, shrunk towards its centre, bounds where flow points are picked (inside the face,
#: away from its outline, where the background would pull them): brows, cheekbones, jaw above the chin.
_INNER_FACE = (70, 105, 107, 9, 336, 334, 300, 345, 411, 426, 436, 432, 17, 212, 216, 206, 187, 116)

#: Landmarks always tracked besides the detected corners (textured, rigid points: eye corners, nose, nostrils).
_ANCHOR_POINTS = (33, 133, 362, 263, 1, 4, 6, 168, 195, 98, 327, 61, 291, 105, 334, 107, 336)

_LK_PARAMS = dict(winSize=(15, 15), maxLevel=2,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


class FlowFaceTracker:
    """FaceMesh every ``mesh_every`` frames, the mesh moved by optical flow on the frames between.

    Parameters
    ----------
    mesh_every : int
        Frames from one FaceMesh pass to the next while the flow holds the face (1 = FaceMesh on every frame).
    detect_every : int
        Frames between face-detector runs (presence score, number of faces); rounded to whole mesh passes.
    max_corners : int
        Corner points picked inside the face at each mesh pass for the flow.
    max_fb_error_px : float
        A point whose forward-backward flow does not return within this many pixels is dropped.
    min_points : int
        Fewer surviving points than this (or an implausible motion) counts as a lost track: FaceMesh runs now.
    mesh_weight : float
        Share of each new mesh's difference from the flow's prediction that is ramped in over the next
        ``mesh_every`` frames (1: all of it; below 1, an exponential average of the meshes in the face's frame).
    max_blend_gap : float
        A new mesh whose median landmark lies further than this share of the inter-ocular distance from the
        prediction replaces it outright.
    min_detection_confidence, min_tracking_confidence : float
        MediaPipe's thresholds.
    """

    def __init__(
        self,
        mesh_every: int = 5,
        detect_every: int = 30,
        max_corners: int = 40,
        max_fb_error_px: float = 0.5,
        min_points: int = 10,
        mesh_weight: float = 1.0,
        max_blend_gap: float = 0.1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        if mesh_every < 1 or detect_every < 1:
            raise ValueError("mesh_every and detect_every must be at least 1")
        self.mesh_every = int(mesh_every)
        self.detect_every = int(detect_every)
        self.max_corners = int(max_corners)
        self.max_fb_error_px = float(max_fb_error_px)
        self.min_points = int(min_points)
        self.mesh_weight = float(mesh_weight)
        self.max_blend_gap = float(max_blend_gap)
        self._mesh = FaceTracker(
            static_image_mode=False, max_num_faces=1, min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
            score_every=max(1, round(self.detect_every / self.mesh_every)),
        )
        self._lock = threading.Lock()
        self.mesh_passes = 0
        self.flow_frames = 0
        self._clear()

    def _clear(self) -> None:
        self._key: FaceObservation | None = None   # the last mesh
        self._key_gray: np.ndarray | None = None   # grey crop of the mesh's frame
        self._key_origin = np.zeros(2, np.float32)  # the crop's top-left corner in the frame
        self._key_points: np.ndarray | None = None  # (n, 1, 2) flow points in crop coordinates
        self._last_points: np.ndarray | None = None  # where they were found in the previous frame (crop coords)
        self._correction: np.ndarray | None = None  # (478, 3) the last mesh's pull on the key landmarks
        self._since_mesh = 0
        self._search_wait = 0

    def _crop_box(self, face: FaceObservation, height: int, width: int) -> tuple[int, int, int, int]:
        x, y, w, h = face.bbox
        margin = int(0.25 * max(w, h)) + 16
        return max(0, x - margin), max(0, y - margin), min(width, x + w + margin), min(height, y + h + margin)

    def _start_track(self, image_bgr: np.ndarray, face: FaceObservation) -> None:
        """Remember the mesh's frame (a grey crop around the face) and pick the points the flow follows."""
        height, width = image_bgr.shape[:2]
        x0, y0, x1, y1 = self._crop_box(face, height, width)
        crop = cv2.cvtColor(image_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        origin = np.array([x0, y0], np.float32)
        hull = face.points_2d(_INNER_FACE) - origin
        centre = hull.mean(axis=0)
        hull = np.round(centre + 0.85 * (hull - centre)).astype(np.int32)
        mask = np.zeros(crop.shape, np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(hull), 255)
        corners = cv2.goodFeaturesToTrack(crop, maxCorners=self.max_corners, qualityLevel=0.01,
                                          minDistance=max(3, face.bbox[2] // 20), mask=mask)
        anchors = (face.points_2d(_ANCHOR_POINTS) - origin).astype(np.float32).reshape(-1, 1, 2)
        points = anchors if corners is None else np.concatenate([anchors, corners.astype(np.float32)])
        inside = (points[:, 0, 0] >= 0) & (points[:, 0, 1] >= 0) & (points[:, 0, 0] < crop.shape[1] - 1) & \
                 (points[:, 0, 1] < crop.shape[0] - 1)
        self._key, self._key_gray, self._key_origin = face, crop, origin
        self._key_points = np.ascontiguousarray(points[inside])
        self._last_points = self._key_points.copy()
        self._since_mesh = 0

    def _follow(self, image_bgr: np.ndarray, ramp: float) -> FaceObservation | None:
        """The key landmarks, ``ramp`` (0..1) of the way corrected, moved onto this frame by the flow; None when
        the flow lost the face."""
        key = self._key
        x0, y0 = (int(v) for v in self._key_origin)
        crop_h, crop_w = self._key_gray.shape
        crop = cv2.cvtColor(image_bgr[y0:y0 + crop_h, x0:x0 + crop_w], cv2.COLOR_BGR2GRAY)
        if crop.shape != self._key_gray.shape:
            return None
        forward, status, _ = cv2.calcOpticalFlowPyrLK(self._key_gray, crop, self._key_points,
                                                       self._last_points.copy(),
                                                       flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK_PARAMS)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(crop, self._key_gray, forward,
                                                         self._key_points.copy(),
                                                         flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK_PARAMS)
        error = np.linalg.norm((back - self._key_points).reshape(-1, 2), axis=1)
        good = (status.ravel() == 1) & (status_back.ravel() == 1) & (error < self.max_fb_error_px)
        if int(good.sum()) < self.min_points:
            return None
        source, target = self._key_points[good].reshape(-1, 2), forward[good].reshape(-1, 2)
        matrix, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0, maxIters=200)
        if matrix is None or int(inliers.sum()) < self.min_points:
            return None
        scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
        if not 0.8 < scale < 1.25:
            return None
        self._last_points = forward
        landmarks = key.landmarks_px.astype(np.float64)
        if self._correction is not None:
            landmarks = landmarks + ramp * self._correction
        xy = landmarks[:, :2] - self._key_origin
        moved = np.empty_like(landmarks)
        moved[:, :2] = xy @ matrix[:, :2].T + matrix[:, 2] + self._key_origin
        moved[:, 2] = landmarks[:, 2] * scale
        return observation_from_landmarks(moved.astype(np.float32), key.image_size,
                                          presence_score=key.presence_score, num_faces=key.num_faces)

    def process(self, image_bgr: np.ndarray) -> FaceObservation | None:
        """Track the face in one BGR uint8 frame; None when no face is seen.

        Raises
        ------
        ValueError
            When the image is not an (h, w, 3) uint8 array.
        """
        check_bgr_image(image_bgr, "FlowFaceTracker.process")
        with self._lock:
            if self._key is not None and image_bgr.shape[:2] != self._key.image_size:
                self._clear()  # the source changed size: start afresh
            if self._key is not None:
                self._since_mesh += 1
                if self._since_mesh < self.mesh_every:
                    face = self._follow(image_bgr, self._since_mesh / self.mesh_every)
                    if face is not None:
                        self.flow_frames += 1
                        return face
            elif self._search_wait > 0:
                self._search_wait -= 1
                return None  # no face: look again on the next mesh frame, not on every frame
            ramp = min(1.0, self._since_mesh / self.mesh_every)
            predicted = self._follow(image_bgr, ramp) if self._key is not None else None
            measured = self._mesh.process(image_bgr)
            self.mesh_passes += 1
            if measured is None:
                self._clear()
                self._search_wait = self.mesh_every - 1
                return None
            face, correction = self._merge(predicted, measured)
            self._start_track(image_bgr, face)
            self._correction = correction
            return face

    def _merge(self, predicted: FaceObservation | None,
               measured: FaceObservation) -> tuple[FaceObservation, np.ndarray | None]:
        """The new key face and the correction the next frames ramp in: (predicted, ``mesh_weight`` of the way
        to the new mesh), or (the new mesh, None) when there is no prediction or it is far off.

        FaceMesh's landmarks jitter by a few tenths of a pixel from pass to pass; applied at once every
        ``mesh_every`` frames, that jitter would be steps in the skin regions' edges, with much of their power
        in the pulse band. So the flow carries the motion, and each mesh's pull (an exponential average of the
        meshes, in the face's own frame) is spread evenly over the frames up to the next mesh. A mesh far from
        the prediction (the face turned fast, or the flow slipped) is taken as it is.
        """
        if predicted is None:
            return measured, None
        gap = measured.landmarks_px - predicted.landmarks_px
        if float(np.median(np.linalg.norm(gap[:, :2], axis=1))) > self.max_blend_gap * max(
                measured.inter_ocular_px, 1.0):
            return measured, None
        face = observation_from_landmarks(predicted.landmarks_px, measured.image_size,
                                          presence_score=measured.presence_score, num_faces=measured.num_faces)
        return face, self.mesh_weight * gap.astype(np.float64)

    def reset(self) -> None:
        """Forget tracking state (next frame is a fresh detection)."""
        with self._lock:
            self._mesh.reset()
            self._clear()

    def close(self) -> None:
        """Release MediaPipe's graphs; the tracker re-creates them on next use."""
        with self._lock:
            self._mesh.close()
            self._clear()

    def __enter__(self) -> FlowFaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Analyzers that read the face's shape at every frame (eyelids, mouth, expression, pose), so need FaceMesh there.
SHAPE_ANALYZERS = frozenset({"emotion", "fatigue", "identity"})

#: Offline (the clip report), vitals alone, the learned pulse methods: FaceMesh on every this many frames, the
#: landmarks interpolated on the frames' timestamps between (:meth:`smartmirror.pipeline.Pipeline.run`). The networks
#: read open-rppg's BlazeFace crop, not the mesh; only their colour checks read the mesh's skin regions. Measured
#: with ``benchmarks/real_eval.py DATASET --landmarks-every N`` on 15 UBFC-rPPG subjects against FaceMesh on every
#: frame: every 10th frame leaves FacePhys and ME-rlap as they are (window MAE 2.33 / 2.36 bpm, clip error 0.80,
#: no nulls, coverage 0.99), and ME-pure keeps every 5th. The flow tracker (:class:`FlowFaceTracker`) gave the
#: same figures at 2-3 ms of CPU a frame more. The unsupervised methods read the mesh's skin regions and keep
#: FaceMesh on every frame (:data:`VITALS_LANDMARKS_EVERY`).
LEARNED_LANDMARKS_EVERY: dict[str, int] = {"facephys-rlap": 10, "me-rlap": 10, "me-pure": 5}


#: Longest stretch (seconds) between two tracked faces across which a skipped frame's landmarks are interpolated.
MAX_INTERPOLATION_S = 1.0


def between_faces(t: float, before: tuple[float, FaceObservation] | None, after: tuple[float, FaceObservation]
                  ) -> FaceObservation:
    """The face at time ``t`` of a frame the tracker skipped (live: busy; offline: ``landmarks_every``):
    landmarks linearly interpolated between the tracked faces before and after it (the one after alone when
    there is none before, or it is over :data:`MAX_INTERPOLATION_S` away).

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


#: Between two tracked frames of an offline pass, the frames between are tracked too (not interpolated) when an
#: eye's mean luma on one of them (inside the eye's outline where the interpolated landmarks put it) departs from
#: the straight line between the tracked frames' by more than this many grey levels: a lid closing over the iris
#: in a blink that falls between two tracked frames. Measured with FaceMesh on every frame and every 4th frame
#: taken as tracked: the PhysRecorder webcam clip's one blink (3 frames) departs by 6-10 levels; an open eye's
#: departures (that clip and UBFC-rPPG subjects 4 and 10, H.264) are 1 level in the median, 3-6 at the 99th
#: percentile, and 0.3-1.4 % of the frames between cross this line (so tracked: a small cost).
EYE_LUMA_JUMP = 6.0
#: ... or when the eye aspect ratio of the two tracked frames differs by more than this share (a blink under way).
EYE_OPENNESS_CHANGE = 0.2


def eye_luma(image_bgr: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
    """Mean luma (0..255) inside each eye's outline (left, right), NaN for an eye outside the frame: the cheap
    per-frame check of :data:`EYE_LUMA_JUMP` (about 0.05 ms a frame)."""
    height, width = image_bgr.shape[:2]
    values = np.full(2, np.nan)
    for k, name in enumerate(("left_eye", "right_eye")):
        points = np.asarray(landmarks_px, dtype=np.float32)[list(REGIONS[name]), :2]
        x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 1, [width, height])
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        grey = cv2.cvtColor(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY)
        mask = np.zeros(grey.shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(points - [x0, y0]).astype(np.int32), 1)
        if mask.any():
            values[k] = cv2.mean(grey, mask)[0]
    return values


def eyes_changed_between(first: FaceObservation, last: FaceObservation, luma_first: np.ndarray,
                         luma_last: np.ndarray, between: list[tuple[float, np.ndarray]]) -> bool:
    """Whether the eyes may have blinked between two tracked faces: their openness differs by more than
    :data:`EYE_OPENNESS_CHANGE`, or a frame between (``(weight 0..1 from first to last, its eye_luma)``) departs
    from the line between the tracked frames' eye luma by more than :data:`EYE_LUMA_JUMP`."""
    open_first, open_last = eye_openness(first.landmarks_px), eye_openness(last.landmarks_px)
    if abs(open_first - open_last) > EYE_OPENNESS_CHANGE * max(open_first, open_last, 1e-6):
        return True
    for weight, luma in between:
        expected = luma_first + weight * (luma_last - luma_first)
        departure = np.abs(luma - expected)
        if np.any(departure[np.isfinite(departure)] > EYE_LUMA_JUMP):
            return True
    return False


#: Offline (the clip report, eval), vitals alone with an unsupervised method: FaceMesh on every this many frames by
#: default, the landmarks interpolated on the frames' timestamps between (:meth:`smartmirror.pipeline.Pipeline.run`).
#: 1 (more is opt-in): with every 5th frame POS's window MAE on 16 UBFC-rPPG subjects went from 5.0 to 8.5 bpm
#: (subject 15 read at half its rate, subject 4 +5.7 bpm instead of +2.5). FaceMesh's frame-to-frame motion itself
#: carries power at the heart rate (the skin regions follow the head's small beat-to-beat motion): replaying every
#: frame's landmarks smoothed over 9 frames (Savitzky-Golay) took 9 % of green's and 15 % of red's power at the rate
#: away on subject 10 and sent it and subject 9, whose spectra hold nearly as much at half the rate, to that half
#: (``benchmarks/landmark_replay.py``); since the clip course's colour search they keep their rate but read worse
#: (window MAE 2.2 / 3.0 bpm -> 4.9 / 4.2 smoothed, 4.2 / 8.0 with every 5th frame, subject 9 then 7 bpm off).
#: On 15 subjects every 4th frame gave POS window MAE 2.71 bpm (every frame 2.73) but one head-motion
#: subject's whole-clip reading off by +5.7 bpm instead of +2.5; and with every 2nd to 4th frame, a still photo's H.264
#: clip (tests/test_quality_real.py) gets a confident 100-108 beats/min: interpolated landmarks take FaceMesh's
#: frame-to-frame jitter out of the noise-floor band (its margin 8.6 -> 20.2 dB), so its encoder pulsing passes.
VITALS_LANDMARKS_EVERY = 1


def landmarks_every_for(analyzers: Iterable[str], method: str | None = None, asked: int | None = None) -> int:
    """How often an offline pass takes fresh landmarks: every frame for any of :data:`SHAPE_ANALYZERS` (blinks,
    expressions, pose); otherwise ``asked``, or by default :data:`LEARNED_LANDMARKS_EVERY` for the pulse
    ``method`` (its canonical name) and :data:`VITALS_LANDMARKS_EVERY` for the others."""
    if SHAPE_ANALYZERS & set(analyzers):
        return 1
    if asked is not None:
        return max(1, int(asked))
    return LEARNED_LANDMARKS_EVERY.get(method or "", VITALS_LANDMARKS_EVERY)
