"""The transparent drowsiness scoring, and the drowsiness MLP pipeline on generated feature data."""

from __future__ import annotations

import dataclasses

import joblib
import numpy as np
import pytest
from fatigue_sequences import Episode, build_sequence

from smartmirror.fatigue import (
    SCORE_TERMS,
    FatigueAnalyzer,
    FatigueMeasures,
    FatigueModelError,
    drowsiness_score,
    fatigue_features,
    load_mlp,
    save_mlp,
    train_mlp,
)

CALM = FatigueMeasures(
    perclos=0.02, blinks_per_min=15.0, mean_blink_duration_s=0.15, blink_count=15, microsleeps=0, long_closures=0,
    eye_window_s=60.0, yawns=0, nods=0, slow_window_s=300.0,
)


def test_scoring_is_zero_when_alert_and_rises_with_each_sign():
    calm = drowsiness_score(CALM)
    assert calm.probability == 0.0
    assert set(calm.evidence) == {term for term, *_ in SCORE_TERMS}
    signs = {
        "perclos": {"perclos": 0.15},
        "microsleeps": {"microsleeps": 2},
        "long_closures": {"long_closures": 3},
        "blink_duration": {"mean_blink_duration_s": 0.5},
        "blink_rate": {"blinks_per_min": 45.0},
        "yawns": {"yawns": 3},
        "nods": {"nods": 2},
    }
    weights = {term: weight for term, _, _, weight in SCORE_TERMS}
    for term, change in signs.items():
        score = drowsiness_score(dataclasses.replace(CALM, **change))
        assert score.evidence[term] == 1.0
        assert score.probability == pytest.approx(weights[term]), term
    assert drowsiness_score(dataclasses.replace(CALM, perclos=0.15)).probability >= 0.85  # Wierwille's drowsy
    both = drowsiness_score(dataclasses.replace(CALM, perclos=0.15, yawns=3)).probability
    assert both == pytest.approx(1 - (1 - 0.85) * (1 - 0.55))
    # one microsleep seen in the first 10 s is not extrapolated to six per minute
    early = dataclasses.replace(CALM, microsleeps=1, eye_window_s=10.0)
    assert drowsiness_score(early).probability == drowsiness_score(dataclasses.replace(CALM, microsleeps=1)).probability
    # too few blinks: their mean duration is not evidence yet
    few = dataclasses.replace(CALM, blink_count=2, mean_blink_duration_s=0.6)
    assert drowsiness_score(few).evidence["blink_duration"] == 0.0
    unknown = dataclasses.replace(CALM, perclos=None, blinks_per_min=None, mean_blink_duration_s=None)
    assert drowsiness_score(unknown).probability == 0.0


def generated_features(astronaut_face, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows around her real open-eye features (alert) and drowsy ones (eyes half shut or closed, some
    yawns, tilted and dropped head); labels 1 = drowsy."""
    rng = np.random.default_rng(seed)
    f = fatigue_features(astronaut_face)
    half = n // 2
    ear = np.r_[rng.normal(f.ear, 0.025, half), rng.uniform(0.02, 0.6, n - half) * f.ear]
    yawning = np.r_[np.zeros(half), rng.random(n - half) < 0.3]
    mar = np.where(yawning, rng.normal(0.95, 0.1, n), rng.normal(f.mar, 0.04, n))
    side = rng.choice([-1, 1], n - half)
    tilt = np.r_[rng.normal(f.tilt_deg, 3, half), f.tilt_deg + side * rng.normal(9, 4, n - half)]
    pitch = np.r_[rng.normal(f.pitch_ratio, 0.03, half), rng.normal(f.pitch_ratio - 0.1, 0.05, n - half)]
    x = np.column_stack([ear, mar, (mar > 0.6).astype(float), tilt, pitch])
    y = np.r_[np.zeros(half, int), np.ones(n - half, int)]
    return x, y


def test_mlp_pipeline_trains_saves_loads_and_drives_the_analyzer(astronaut_face, tmp_path):
    x, y = generated_features(astronaut_face, 400, seed=0)
    model, metrics = train_mlp(x, y, seed=0, max_epochs=40)
    assert metrics["test_accuracy"] >= 0.9 and metrics["test_balanced_accuracy"] >= 0.9
    assert metrics["n_train"] == pytest.approx(0.70 * 400, abs=2)
    assert metrics["n_val"] == pytest.approx(0.15 * 400, abs=2) and metrics["n_test"] == pytest.approx(60, abs=2)
    mlp = model.pipeline.named_steps["mlp"]
    assert mlp.hidden_layer_sizes == (32, 16) and mlp.activation == "relu" and mlp.batch_size == 64
    # the numpy forward pass equals scikit-learn's
    assert np.allclose(model.predict_drowsy(x[:50]), model.pipeline.predict_proba(x[:50])[:, 1], atol=1e-9)

    path = save_mlp(model, tmp_path / "fatigue_mlp.joblib", trained_on="generated test features")
    loaded = load_mlp(path)
    assert np.allclose(loaded.predict_drowsy(x[:50]), model.predict_drowsy(x[:50]))
    assert loaded.metadata["trained_on"] == "generated test features"

    timeline = [Episode("closure", 6.0, 3.0)]
    frames = build_sequence(astronaut_face, timeline, 10.0, 15, seed=4)
    analyzer = FatigueAnalyzer(mlp_path=path, smoothing_s=0.5)
    states = [analyzer.update(p, face) for p, face in frames]
    times = np.array([p.t for p, _ in frames])
    p = np.array([s.drowsiness_probability for s in states])
    assert states[-1].drowsiness_method == "mlp"
    assert p[times < 5.5].max() < 0.3 and p[(times > 7.5) & (times < 9.0)].min() > 0.7
    assert states[-1].drowsiness_score_rules is not None and analyzer.summary()["drowsiness_method"] == "mlp"
    assert FatigueAnalyzer().summary() is None and FatigueAnalyzer().mlp_ is None  # never loaded implicitly


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bare_classifier_reads_class_zero_as_drowsy(astronaut_face, tmp_path):
    from sklearn.neural_network import MLPClassifier

    x, y = generated_features(astronaut_face, 200, seed=1)
    ddd_labels = 1 - y  # Driver Drowsiness Dataset: Drowsy (0), Non-drowsy (1)
    bare = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=100, random_state=0).fit(x, ddd_labels)
    joblib.dump(bare, tmp_path / "fatigue_mlp.joblib")
    loaded = load_mlp(tmp_path / "fatigue_mlp.joblib")
    p = loaded.predict_drowsy(x)
    assert ((p >= 0.5) == (y == 1)).mean() > 0.9


def test_bad_model_files_and_training_data_give_clear_errors(tmp_path):
    with pytest.raises(FatigueModelError, match="No fatigue model file"):
        load_mlp(tmp_path / "missing.joblib")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(FatigueModelError, match="not a readable joblib model"):
        load_mlp(garbage)
    joblib.dump({"format": "something else"}, tmp_path / "other.joblib")
    with pytest.raises(FatigueModelError, match="not a SmartMirror fatigue model"):
        load_mlp(tmp_path / "other.joblib")
    joblib.dump([1, 2, 3], tmp_path / "list.joblib")
    with pytest.raises(FatigueModelError, match="not a fatigue classifier"):
        FatigueAnalyzer(mlp_path=tmp_path / "list.joblib")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 5 samples of each class"):
        train_mlp(rng.normal(size=(20, 5)), np.r_[np.zeros(17, int), np.ones(3, int)])
    with pytest.raises(ValueError, match="expected features"):
        train_mlp(rng.normal(size=(20, 4)), np.zeros(20, int))
