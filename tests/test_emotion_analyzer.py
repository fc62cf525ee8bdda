"""Face crop, circumplex, "tired" fusion, smoothing with hysteresis, and the EmotionAnalyzer on real frames."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from smartmirror.frames import FramePacket


@pytest.fixture(scope="module")
def rotated_astronaut():
    """The astronaut photo rotated by 20 degrees, with FaceMesh's observation of it."""
    from smartmirror.face import FaceTracker
    from smartmirror.synth import default_face_image

    image = default_face_image()
    rotation = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    rotated = cv2.warpAffine(image, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT)
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(rotated)
    assert face is not None
    return rotated, face


def test_crop_levels_the_eyes_and_undoes_head_roll(astronaut_bgr, astronaut_face, rotated_astronaut):
    from smartmirror.emotion.crop import crop_face, eye_and_mouth_centres, face_crop_transform

    rotated, face = rotated_astronaut
    assert abs(face.roll_deg) > 15  # the tracker sees the tilt
    matrix = face_crop_transform(face.landmarks_px, (64, 64))
    right_eye, left_eye, mouth = eye_and_mouth_centres(face.landmarks_px)
    mapped = [matrix[:, :2] @ p + matrix[:, 2] for p in (right_eye, left_eye, mouth)]
    assert abs(mapped[0][1] - mapped[1][1]) < 0.01  # eyes level in the crop
    assert mapped[0][0] < 32 < mapped[1][0]  # subject's right eye on the image left
    assert 32 < mapped[2][1] < 64 and abs(mapped[2][0] - 32) < 3  # mouth centred below
    upright = crop_face(astronaut_bgr, astronaut_face)
    levelled = crop_face(rotated, face)
    assert levelled.shape == upright.shape == (64, 64)
    # the levelled crop of the tilted photo looks like the crop of the upright one
    naive = cv2.resize(cv2.cvtColor(rotated, cv2.COLOR_BGR2GRAY)[slice(*_rows(face)), slice(*_cols(face))], (64, 64))
    error_levelled = np.abs(levelled.astype(float) - upright).mean()
    error_naive = np.abs(naive.astype(float) - upright).mean()
    assert error_levelled < 12 and error_levelled < 0.6 * error_naive


def _rows(face):
    x, y, w, h = face.bbox
    return y, y + h


def _cols(face):
    x, y, w, h = face.bbox
    return x, x + w


def test_crop_rejects_a_face_too_small(astronaut_face):
    from smartmirror.emotion.crop import face_crop_transform

    tiny = astronaut_face.landmarks_px * 0.05
    with pytest.raises(ValueError, match="too small"):
        face_crop_transform(tiny, (64, 64))


def test_circumplex_mapping():
    from smartmirror.emotion.labels import FER_LABELS, valence_arousal

    happy_v, happy_a = valence_arousal({"happy": 1.0})
    angry_v, angry_a = valence_arousal({"angry": 1.0})
    sad_v, sad_a = valence_arousal({"sad": 1.0})
    tired_v, tired_a = valence_arousal({"tired": 1.0})
    assert happy_v > 0.95 and 0 < happy_a < 0.2
    assert angry_a > 0.95 and angry_v < 0
    assert sad_v < -0.8 and sad_a < -0.4
    assert tired_a < -0.99
    assert valence_arousal({"neutral": 1.0}) == (0.0, 0.0)
    assert valence_arousal(dict.fromkeys(FER_LABELS, 0.0)) == (0.0, 0.0)
    mixed = valence_arousal({"happy": 0.5, "sad": 0.5})
    assert mixed == pytest.approx(((happy_v + sad_v) / 2, (happy_a + sad_a) / 2))
    rng = np.random.default_rng(0)
    for _ in range(50):
        v, a = valence_arousal(dict(zip(FER_LABELS, rng.dirichlet(np.ones(7)), strict=True)))
        assert -1 <= v <= 1 and -1 <= a <= 1 and v * v + a * a <= 1 + 1e-9


def fatigue_state(**values):
    """A fatigue analyzer's state with a face and the given fields (the rest None)."""
    from smartmirror.fatigue.state import FatigueState

    empty = FatigueState.without_face(0.0, mode="wellness", calibrated=True, microsleep=False,
                                      drowsiness_method="rules", alert=False, alert_reason=None)
    return dataclasses.replace(empty, **{"face_present": True, "status": "ok", **values})


def test_tired_fusion_from_fatigue_state():
    from smartmirror.emotion.fusion import fuse_tired, fuse_valence_arousal, tired_evidence
    from smartmirror.emotion.labels import valence_arousal

    assert tired_evidence(None) is None
    assert tired_evidence(fatigue_state(face_present=False, drowsiness_probability=0.9)) is None
    assert tired_evidence(fatigue_state()) is None  # no drowsiness measured yet
    assert tired_evidence(fatigue_state(drowsiness_probability=float("nan"))) is None
    assert tired_evidence(fatigue_state(drowsiness_probability=0.2)) == 0.0
    assert tired_evidence(fatigue_state(drowsiness_probability=0.55)) == pytest.approx(0.475)
    assert tired_evidence(fatigue_state(drowsiness_probability=0.9)) == pytest.approx(0.95)
    assert tired_evidence(fatigue_state(drowsiness_probability=0.1, microsleep=True)) == pytest.approx(0.95)

    probabilities = {"happy": 0.8, "neutral": 0.2}
    fused, share = fuse_tired(probabilities, None)
    assert fused == {"happy": 0.8, "neutral": 0.2, "tired": 0.0} and share == 0
    fused, share = fuse_tired(probabilities, 0.6)
    assert fused["tired"] == pytest.approx(0.6) and sum(fused.values()) == pytest.approx(1.0)
    assert fused["happy"] / fused["neutral"] == pytest.approx(4.0)  # the others keep their ratios
    v, a = fuse_valence_arousal(*valence_arousal(probabilities), share)
    assert (v, a) == pytest.approx(valence_arousal(fused))  # consistent with the circumplex of the fused classes
    # a model that already says tired more strongly keeps its own value
    fused, share = fuse_tired({"happy": 0.3, "tired": 0.7}, 0.5)
    assert fused["tired"] == 0.7 and share == 0


def test_smoother_holds_the_label_through_noise_where_raw_argmax_flips():
    from smartmirror.emotion.smoothing import LabelSmoother

    rng = np.random.default_rng(1)
    smoother = LabelSmoother(time_constant_s=1.0, switch_margin=0.1, hold_s=0.5)
    raw_labels, shown = [], []
    for i in range(300):  # 10 s at 30 fps: happy slightly ahead of neutral, with heavy frame noise
        happy = float(np.clip(0.55 + rng.normal(0, 0.15), 0, 1))
        probabilities = {"happy": happy, "neutral": 1 - happy}
        raw_labels.append(max(probabilities, key=probabilities.get))
        shown.append(smoother.update(i / 30, probabilities).label)
    raw_flips = sum(a != b for a, b in zip(raw_labels, raw_labels[1:], strict=False))
    assert raw_flips > 50
    assert set(shown) == {"happy"}


def test_smoother_follows_a_real_change_after_the_hold():
    from smartmirror.emotion.smoothing import LabelSmoother

    smoother = LabelSmoother(time_constant_s=1.0, switch_margin=0.1, hold_s=0.5)
    labels = [smoother.update(i / 30, {"happy": 0.9, "sad": 0.1}).label for i in range(60)]
    labels += [smoother.update(2 + i / 30, {"happy": 0.1, "sad": 0.9}).label for i in range(90)]
    assert labels[59] == "happy" and labels[-1] == "sad"
    switch = labels.index("sad")
    # the EMA needs ~0.6 s to give sad a 0.1 lead, then the hold adds 0.5 s
    assert 60 + 0.9 * 30 < switch < 60 + 1.6 * 30
    assert set(labels[switch:]) == {"sad"}  # no flicker back


def test_smoother_uses_source_time_not_frame_count():
    from smartmirror.emotion.smoothing import LabelSmoother

    at_30fps, at_10fps = LabelSmoother(1.0), LabelSmoother(1.0)
    for i in range(31):
        at_30fps.update(i / 30, {"a": 1.0 if i else 0.0, "b": 0.0 if i else 1.0})
    for i in range(11):
        at_10fps.update(i / 10, {"a": 1.0 if i else 0.0, "b": 0.0 if i else 1.0})
    # after 1 s of "a" both have moved 1 - exp(-1) of the way
    assert at_30fps.probabilities_["a"] == pytest.approx(1 - np.exp(-1), abs=1e-6)
    assert at_10fps.probabilities_["a"] == pytest.approx(1 - np.exp(-1), abs=1e-6)


def test_analyzer_on_real_frames(astronaut_bgr, astronaut_face):
    from smartmirror.analyzer import Analyzer
    from smartmirror.emotion import EMOTION_LABELS, EmotionAnalyzer

    analyzer = EmotionAnalyzer()
    assert isinstance(analyzer, Analyzer)
    assert analyzer.update(FramePacket(0.0, astronaut_bgr), None) is None  # nothing to say before a face
    states = [analyzer.update(FramePacket(0.1 + i / 30, astronaut_bgr, i), astronaut_face) for i in range(15)]
    state = states[-1]
    assert state.face_present and state.label == "happy" and state.raw_label == "happy"
    assert list(state.probabilities) == list(EMOTION_LABELS)  # the 8 emotion classes, tired included
    assert state.probabilities["tired"] == 0 and state.tired_evidence is None
    assert state.valence > 0.8 and -1 <= state.arousal <= 1
    assert state.to_json() == {"face_present": True, "label": "happy", "confidence": state.confidence,
                               "probabilities": state.probabilities, "valence": state.valence,
                               "arousal": state.arousal, "raw_label": "happy", "tired_evidence": None, "t": state.t}
    gone = analyzer.update(FramePacket(1.0, astronaut_bgr), None)
    assert gone.face_present is False and gone.label == "happy" and gone.t == 1.0

    drowsy = fatigue_state(drowsiness_probability=0.95)
    for i in range(60):  # 2 s of a drowsy fatigue state
        state = analyzer.update(FramePacket(1.1 + i / 30, astronaut_bgr), astronaut_face, fatigue_state=drowsy)
    assert state.raw_label == "tired" and state.label == "tired"
    assert state.valence < 0.3 and state.arousal < -0.5

    summary = analyzer.summary()
    assert set(summary) == {"label", "confidence", "probabilities", "valence", "arousal"}
    assert summary["label"] == "tired"  # 60 of 75 frames were drowsy
    assert summary["probabilities"]["happy"] > 0.15
    assert sum(summary["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    analyzer.reset()
    assert analyzer.summary() is None


def test_analyzer_label_stays_put_while_raw_label_flickers(astronaut_bgr, astronaut_face):
    """A hand passing over the mouth in some frames flips the per-frame label; the shown label holds."""
    from smartmirror.emotion import EmotionAnalyzer

    x0, y0, w, h = cv2.boundingRect(astronaut_face.region_polygon("mouth"))
    covered = astronaut_bgr.copy()
    covered[y0 - h // 2 : y0 + h + h // 2, x0 - w // 4 : x0 + w + w // 4] = (90, 90, 90)
    rng = np.random.default_rng(3)
    analyzer = EmotionAnalyzer()
    raw, shown = [], []
    for i in range(70):  # the face is seen clearly for 1/3 s, then the hand covers the mouth in ~35 % of frames
        frame = covered if i >= 10 and rng.random() < 0.35 else astronaut_bgr
        state = analyzer.update(FramePacket(i / 30, frame, i), astronaut_face)
        raw.append(state.raw_label)
        shown.append(state.label)
    raw_flips = sum(a != b for a, b in zip(raw, raw[1:], strict=False))
    assert raw_flips >= 10 and len(set(raw)) >= 2
    assert set(shown) == {"happy"}
