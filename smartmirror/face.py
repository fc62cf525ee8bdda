"""One face tracker for every analyzer: MediaPipe FaceMesh (478 landmarks with iris), named regions, head pose.

``FaceTracker.process(image_bgr)`` returns a :class:`FaceObservation` or ``None`` when no face is found (never an
exception for an ordinary frame). Regions are named from the subject's point of view (MediaPipe's convention):
``left_eye`` is the subject's left eye, which lies on the right of an unmirrored image.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from smartmirror.paths import WEIGHTS_DIR

log = logging.getLogger(__name__)

#: Ordered polygons of FaceMesh landmark indices, one per named region.
REGIONS: dict[str, tuple[int, ...]] = {
    # between the brows' upper edge and the upper forehead (below the hairline of most people)
    "forehead": (108, 151, 337, 299, 333, 298, 301, 293, 334, 296, 336, 9, 107, 66, 105, 63, 71, 68, 104, 69),
    # subject's left cheek (image right), below the eye, beside the nose, above the mouth corner
    "left_cheek": (345, 346, 347, 348, 349, 329, 371, 423, 426, 436, 432, 430, 434, 416, 376, 352),
    # subject's right cheek (image left), the mirror of the left
    "right_cheek": (116, 117, 118, 119, 120, 100, 142, 203, 206, 216, 212, 210, 214, 192, 147, 123),
    "left_eye": (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    "right_eye": (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    "mouth": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
}

#: The regions whose colour carries the pulse (used by rPPG).
SKIN_REGIONS = ("forehead", "left_cheek", "right_cheek")

#: Five alignment points (as used by dlib-style aligners): eye centres (iris), nose tip, mouth corners.
LEFT_IRIS_CENTER = 473
RIGHT_IRIS_CENTER = 468
NOSE_TIP = 1
MOUTH_LEFT_CORNER = 291
MOUTH_RIGHT_CORNER = 61

#: A frontal, level face in FaceMesh's own geometry (468 points, millimetres, OpenCV camera axes: x right,
#: y down, z away from the camera), made by scripts/make_canonical_face.py (MediaPipe's wheel lacks the .obj).
CANONICAL_FACE_PATH = WEIGHTS_DIR / "canonical_face.npy"


@functools.lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """The canonical 3-D face for head pose, (468, 3) millimetres."""
    return np.load(CANONICAL_FACE_PATH).astype(np.float64)


@dataclass(frozen=True)
class FaceObservation:
    """What the tracker saw of the main face in one frame.

    Attributes
    ----------
    landmarks_px : ndarray, shape (478, 3), float32
        x and y in pixels of the frame, z in the same scale relative to the face centre (MediaPipe's).
    bbox : tuple of int
        (x, y, width, height) of the landmarks' bounding box in pixels, clipped to the frame.
    presence_score : float
        Face-detector confidence 0..1 (low when the face is covered or half out of view).
    num_faces : int
        How many faces the tracker saw in the frame (the main face is the largest).
    image_size : tuple of int
        (height, width) of the frame.
    pose_deg : tuple of float, optional
        (yaw, pitch, roll) in degrees when already known; by default :func:`head_pose_deg` of the landmarks,
        computed on first use of :attr:`yaw_deg`, :attr:`pitch_deg` or :attr:`roll_deg` (it costs ~0.7 ms, and
        the pulse never asks).
    """

    landmarks_px: np.ndarray
    bbox: tuple[int, int, int, int]
    presence_score: float
    num_faces: int
    image_size: tuple[int, int]
    pose_deg: tuple[float, float, float] | None = None
    _masks: dict = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def head_pose(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees: yaw positive when the subject turns to their left, pitch positive when
        looking up, roll positive when the head tilts clockwise in the image."""
        if self.pose_deg is not None:
            return tuple(float(a) for a in self.pose_deg)
        return head_pose_deg(self.landmarks_px, self.image_size)

    @property
    def yaw_deg(self) -> float:
        """Degrees, positive when the subject turns to their left."""
        return self.head_pose[0]

    @property
    def pitch_deg(self) -> float:
        """Degrees, positive when the subject looks up."""
        return self.head_pose[1]

    @property
    def roll_deg(self) -> float:
        """Degrees, positive when the head tilts clockwise in the image."""
        return self.head_pose[2]

    def region_polygon(self, name: str) -> np.ndarray:
        """The region's outline as an (n, 2) int32 array of pixel coordinates (convex hull for skin regions)."""
        try:
            indices = REGIONS[name]
        except KeyError:
            raise ValueError(f"Unknown region {name!r}; choose one of {sorted(REGIONS)}") from None
        polygon = np.round(self.landmarks_px[list(indices), :2]).astype(np.int32)
        if name in SKIN_REGIONS:  # skin patches are convex; the hull is robust to landmark order and jitter
            polygon = cv2.convexHull(polygon).reshape(-1, 2)
        return polygon

    def region_mask(self, name: str) -> np.ndarray:
        """Boolean mask (height, width) of the region, cached per observation."""
        mask = self._masks.get(name)
        if mask is None:
            mask = np.zeros(self.image_size, dtype=np.uint8)
            cv2.fillPoly(mask, [self.region_polygon(name)], 1)
            mask = mask.astype(bool)
            self._masks[name] = mask
        return mask

    def points_2d(self, indices: tuple[int, ...] | list[int]) -> np.ndarray:
        """(n, 2) float pixel coordinates of the given landmarks."""
        return self.landmarks_px[list(indices), :2].astype(np.float64)

    def alignment_points(self) -> np.ndarray:
        """Five points (5, 2) in pixels: subject's left eye, right eye, nose tip, left and right mouth corners."""
        return self.points_2d(
            [LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER, NOSE_TIP, MOUTH_LEFT_CORNER, MOUTH_RIGHT_CORNER]
        )

    @property
    def inter_ocular_px(self) -> float:
        """Distance between the iris centres in pixels (the face's scale)."""
        left, right = self.points_2d([LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER])
        return float(np.linalg.norm(left - right))


def head_pose_deg(landmarks_px: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """Yaw, pitch and roll in degrees from solvePnP of 468 landmarks against the canonical 3-D face.

    A pinhole camera with focal length equal to the image width and the principal point at the centre is
    assumed (webcams are close to this; the angles are insensitive to the exact focal length).
    """
    height, width = image_size
    try:
        model = canonical_face()
    except FileNotFoundError:  # only while scripts/make_canonical_face.py builds it
        return 0.0, 0.0, 0.0
    if len(landmarks_px) < len(model):
        return 0.0, 0.0, 0.0
    image_points = landmarks_px[:468, :2].astype(np.float64)
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _tvec = cv2.solvePnP(model, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return 0.0, 0.0, 0.0
    rotation, _ = cv2.Rodrigues(rvec)
    angles, *_ = cv2.RQDecomp3x3(rotation)
    pitch, yaw, roll = (float(a) for a in angles)
    # RQDecomp3x3 returns x-angles near +-180 for a face looking at the camera; wrap to [-90, 90].
    pitch = (pitch + 180.0) % 360.0 - 180.0
    if pitch > 90:
        pitch -= 180
    elif pitch < -90:
        pitch += 180
    return -yaw, -pitch, roll


def observation_from_landmarks(
    landmarks_px: np.ndarray, image_size: tuple[int, int], *, presence_score: float, num_faces: int,
    pose_deg: tuple[float, float, float] | None = None,
) -> FaceObservation:
    """A :class:`FaceObservation` of (478, 3) pixel landmarks: bounding box from them, head pose from them on first
    use (or ``pose_deg`` when given)."""
    height, width = image_size
    x0, y0 = np.clip(landmarks_px[:, :2].min(axis=0), 0, [width - 1, height - 1]).astype(int)
    x1, y1 = np.clip(landmarks_px[:, :2].max(axis=0), 0, [width - 1, height - 1]).astype(int)
    return FaceObservation(
        landmarks_px=landmarks_px,
        bbox=(int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)),
        presence_score=float(presence_score),
        num_faces=int(num_faces),
        image_size=(height, width),
        pose_deg=pose_deg,
    )


#: A NormalizedLandmark serialised with x, y and z set and nothing else: field tag, length 15, then the three
#: float32 fields, each a tag byte and 4 little-endian bytes.
_LANDMARK_BYTES = 17
_LANDMARK_HEADER = b"\x0a\x0f\x0d"


def landmarks_array(landmark_list) -> np.ndarray:
    """(n, 3) float32 normalised x, y, z of a MediaPipe ``NormalizedLandmarkList``.

    Read from the message's wire bytes (~0.03 ms for 478 points, where a Python loop over the points takes
    ~1.5 ms); a message in any other layout (visibility or presence set) is read point by point.
    """
    data = landmark_list.SerializeToString()
    count = len(data) // _LANDMARK_BYTES
    if count and len(data) == count * _LANDMARK_BYTES:
        raw = np.frombuffer(data, np.uint8).reshape(count, _LANDMARK_BYTES)
        if (raw[:, :3] == np.frombuffer(_LANDMARK_HEADER, np.uint8)).all() and (raw[:, 7] == 0x15).all() \
                and (raw[:, 12] == 0x1D).all():
            return np.ndarray((count, 3), "<f4", data, offset=3, strides=(_LANDMARK_BYTES, 5)).astype(np.float32)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32).reshape(-1, 3)


#: Landmarks of a :class:`FaceObservation`: FaceMesh's 468 and the ten iris points (centre, then four on its rim,
#: the subject's right iris first) of the refined mesh.
LANDMARK_COUNT = 478
#: An iris's radius as a share of its eye's corner-to-corner width (about 5.9 of 30 mm on an adult).
IRIS_RADIUS_PER_EYE_WIDTH = 0.2


def with_estimated_irises(landmarks: np.ndarray) -> np.ndarray:
    """(468, 3) plain-mesh landmarks extended to (478, 3): each iris centred on its eye outline's mean point, its
    four rim points that radius (:data:`IRIS_RADIUS_PER_EYE_WIDTH` of the eye's width) right, up, left and down of
    it, at the centre's depth. An estimate where the refined mesh measures (the gaze is not followed)."""
    irises = []
    for eye in ("right_eye", "left_eye"):
        outline = landmarks[list(REGIONS[eye])]
        centre = outline.mean(axis=0)
        corners = outline[0, :2], outline[8, :2]  # REGIONS' eye outlines start at one corner, reach the other at 8
        radius = IRIS_RADIUS_PER_EYE_WIDTH * float(np.linalg.norm(corners[0] - corners[1]))
        rim = centre + np.array([[radius, 0, 0], [0, -radius, 0], [-radius, 0, 0], [0, radius, 0]], np.float32)
        irises.extend([centre[None], rim])
    return np.concatenate([landmarks, *irises]).astype(np.float32)


def check_bgr_image(image_bgr: np.ndarray, caller: str) -> None:
    """Raise ``ValueError`` unless ``image_bgr`` is an (h, w, 3) uint8 array (what the trackers take)."""
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"{caller} expects an (height, width, 3) BGR image")
    if image_bgr.dtype != np.uint8:
        raise ValueError(f"{caller} expects uint8 pixels, got {image_bgr.dtype}")


class FaceTracker:
    """MediaPipe FaceMesh (refined, 478 landmarks) with a face-detector presence score.

    Parameters
    ----------
    static_image_mode : bool
        False for video (landmarks tracked between frames, the fast path); True for unrelated photos.
    max_num_faces : int
        Faces FaceMesh looks for; 2 lets the tracker report "two faces" while following the largest.
    min_detection_confidence, min_tracking_confidence : float
        MediaPipe's thresholds.
    refine_landmarks : bool
        MediaPipe's attention mesh (True: eyes, lips and irises refined, 478 points) or its plain mesh (False:
        468 points, about a quarter less CPU a frame; the ten iris points are then estimated from the eye
        outlines by :func:`with_estimated_irises`). Nothing in the product uses the plain mesh: on real faces it
        reads the default pulse method worse (``benchmarks/real_eval.py --tracker plain-mesh``, README), and
        what reads the eyes' or lips' shape (fatigue, emotion) wants the refined one.
    score_every : int
        Re-run the face detector for the presence score and the count of faces every this many frames in video
        mode (every frame in static mode). The default, once a second at 30 frames/s, as the flow tracker and
        vitallens do: the detector costs about as much as a FaceMesh pass (6.8 ms of CPU a call on the 2-core
        box), so every 5th frame was 1.2 ms of every frame; the landmarks do not depend on it (UBFC subject 4:
        the same skin colours to the last bit with 5 or 30).

    Notes
    -----
    In video mode a FaceMesh that looks for more faces than it follows runs its face detector on every frame
    (~1.4 ms of a ~5 ms frame). So while the full-range detector (run every ``score_every`` frames, before the
    mesh) sees one face, a one-face FaceMesh follows it; from the first time it sees several, the
    ``max_num_faces`` FaceMesh takes over for the rest of the track (the largest face is followed, and counted).
    """

    def __init__(
        self,
        static_image_mode: bool = False,
        max_num_faces: int = 2,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        score_every: int = 30,
        refine_landmarks: bool = True,
    ):
        self.static_image_mode = static_image_mode
        self.refine_landmarks = refine_landmarks
        self.max_num_faces = max_num_faces
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.score_every = score_every
        self._lock = threading.Lock()
        self._mesh = None          # max_num_faces faces (static mode, or video mode once several faces were seen)
        self._one_mesh = None      # video mode: one face, while the detector sees one
        self._several = False      # the detector saw several faces in this track
        self._detector = None
        self._crop_mesh = None
        self._frames_seen = 0
        self._last_score = 0.0
        self._last_detected = 0

    @property
    def ready(self) -> bool:
        """Whether MediaPipe's graphs are built (they are on the first :meth:`process`)."""
        return self._detector is not None and (self._mesh is not None or self._one_mesh is not None)

    def _face_mesh(self, max_num_faces: int, static_image_mode: bool | None = None):
        from smartmirror.mediapipe_import import mediapipe

        return mediapipe().solutions.face_mesh.FaceMesh(
            static_image_mode=self.static_image_mode if static_image_mode is None else static_image_mode,
            max_num_faces=max_num_faces,
            refine_landmarks=self.refine_landmarks,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def _ensure_models(self) -> None:
        if self._detector is not None:
            return
        from smartmirror.mediapipe_import import mediapipe

        # The full-range detector (faces up to ~5 m): FaceMesh's own short-range detector misses faces narrower
        # than about a tenth of a wide frame; this one finds them, and the crop mesh below measures them.
        self._detector = mediapipe().solutions.face_detection.FaceDetection(model_selection=1,
                                                                            min_detection_confidence=0.3)

    def _current_mesh(self):
        """The FaceMesh for this frame: the one-face mesh in video mode while only one face was seen."""
        if self.static_image_mode or self.max_num_faces == 1 or self._several:
            if self._mesh is None:
                self._mesh = self._face_mesh(self.max_num_faces)
            return self._mesh
        if self._one_mesh is None:
            self._one_mesh = self._face_mesh(1)
        return self._one_mesh

    def _detections(self, image_rgb: np.ndarray) -> list:
        return list(self._detector.process(image_rgb).detections or [])

    @staticmethod
    def _score(detections: list) -> tuple[float, int]:
        """Best face-detector score and the number of confident detections."""
        if not detections:
            return 0.0, 0
        scores = [float(d.score[0]) for d in detections]
        return max(scores), sum(score >= 0.5 for score in scores)

    def _small_face(self, image_rgb: np.ndarray, detections: list | None = None
                    ) -> tuple[np.ndarray, float, int] | None:
        """A face FaceMesh missed on the whole frame: the full-range detector's largest face (of ``detections``,
        when this frame's are known), meshed on a crop twice its size. Returns (landmarks_px, score, detected)
        or None."""
        height, width = image_rgb.shape[:2]
        if detections is None:
            detections = self._detections(image_rgb)
        detections = [d for d in detections if d.score[0] >= self.min_detection_confidence]
        if not detections:
            return None
        boxes = [d.location_data.relative_bounding_box for d in detections]
        best = int(np.argmax([b.width * b.height for b in boxes]))
        box = boxes[best]
        side = 2.0 * max(box.width * width, box.height * height)
        cx, cy = (box.xmin + box.width / 2) * width, (box.ymin + box.height / 2) * height
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        crop = np.ascontiguousarray(image_rgb[y0:y1, x0:x1])
        if self._crop_mesh is None:  # made on first need: most trackers never see a small face
            self._crop_mesh = self._face_mesh(1, static_image_mode=True)
        faces = self._crop_mesh.process(crop).multi_face_landmarks or []
        if not faces:
            return None
        crop_w, crop_h = x1 - x0, y1 - y0
        scale = np.array([crop_w, crop_h, crop_w], np.float32)
        landmarks = landmarks_array(faces[0]) * scale + np.array([x0, y0, 0], np.float32)
        return landmarks, max(float(d.score[0]) for d in detections), len(detections)

    def process(self, image_bgr: np.ndarray) -> FaceObservation | None:
        """Track the face in one BGR uint8 frame; None when no face is seen.

        Raises
        ------
        ValueError
            When the image is not an (h, w, 3) uint8 array.
        """
        check_bgr_image(image_bgr, "FaceTracker.process")
        height, width = image_bgr.shape[:2]
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        with self._lock:
            self._ensure_models()
            detections = None
            if not self.static_image_mode and self._frames_seen % self.score_every == 0:
                # the detector first (on the frames it would score anyway): it decides which mesh follows
                detections = self._detections(image_rgb)
                self._several = self._several or self._score(detections)[1] >= 2
            result = self._current_mesh().process(image_rgb)
            faces = result.multi_face_landmarks or []
            if faces:
                if self.static_image_mode:
                    detections = self._detections(image_rgb)
                if detections is not None:
                    self._last_score, self._last_detected = self._score(detections)
                self._frames_seen += 1
                score, detected = self._last_score, self._last_detected
                scale = np.array([width, height, width], dtype=np.float32)
                all_landmarks = [landmarks_array(face) * scale for face in faces]
            else:
                self._frames_seen = 0
                self._several = False
                small = self._small_face(image_rgb, detections)
                if small is None:
                    return None
                all_landmarks, score, detected = [small[0]], small[1], small[2]
        areas = [np.ptp(lm[:, 0]) * np.ptp(lm[:, 1]) for lm in all_landmarks]
        landmarks = all_landmarks[int(np.argmax(areas))]
        if len(landmarks) < LANDMARK_COUNT:
            landmarks = with_estimated_irises(landmarks)
        return observation_from_landmarks(landmarks, (height, width), presence_score=score,
                                          num_faces=max(len(all_landmarks), detected))

    def reset(self) -> None:
        """Forget tracking state (next frame is a fresh detection)."""
        with self._lock:
            self.close()

    def close(self) -> None:
        """Release MediaPipe's graphs; the tracker re-creates them on next use."""
        for graph in (self._mesh, self._one_mesh, self._detector, self._crop_mesh):
            if graph is not None:
                graph.close()
        self._mesh = self._one_mesh = self._detector = self._crop_mesh = None
        self._several = False
        self._frames_seen = 0

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
