"""SpO2: ratio of ratios, calibration persisted to disk, gating; the SpO2 Tiny Transformer on synthetic traces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smartmirror.synth import BVP_WEIGHTS_BGR, SynthConfig
from smartmirror.vitals import spo2
from smartmirror.vitals.pipeline import analyze_trace
from smartmirror.vitals.simulate import simulate_trace


def test_ratio_of_ratios_matches_the_generated_channel_weights():
    trace, _ = simulate_trace(SynthConfig(duration_s=15, heart_rate_bpm=70, seed=2), roi_noise=0.0003)
    result = analyze_trace(trace)
    expected = BVP_WEIGHTS_BGR[2] / BVP_WEIGHTS_BGR[0]                     # red over blue amplitude
    assert result.spo2.ratio == pytest.approx(expected, rel=0.1)
    assert result.spo2.calibrated is False and "estimate" in result.spo2.label
    assert result.spo2.percent == pytest.approx(spo2.DEFAULT_A - spo2.DEFAULT_B * result.spo2.ratio, abs=0.1)


def test_calibration_fits_persists_and_is_used(tmp_path, monkeypatch):
    path = tmp_path / "spo2.json"
    ratios = [0.45, 0.55, 0.65, 0.75]
    reference = [99.0, 97.0, 95.0, 93.0]                                  # exactly 108 - 20 * ratio
    fitted = spo2.calibrate(ratios, reference, path=path)
    assert fitted.a == pytest.approx(108.0) and fitted.b == pytest.approx(20.0)
    assert fitted.calibrated and fitted.rms_error == pytest.approx(0.0, abs=1e-9)
    assert json.loads(path.read_text())["b"] == pytest.approx(20.0)
    monkeypatch.setenv("SMARTMIRROR_SPO2_CALIBRATION", str(path))
    loaded = spo2.load_calibration()
    assert loaded.calibrated and loaded.a == pytest.approx(108.0)
    reading = spo2.estimate_spo2(0.6, quality=0.9, calibration=loaded)
    assert reading.percent == pytest.approx(96.0) and reading.calibrated and reading.label == "calibrated"


def test_uncalibrated_default_and_gates(tmp_path):
    assert spo2.load_calibration(tmp_path / "missing.json") == spo2.SpO2Calibration()
    (tmp_path / "broken.json").write_text("{not json")
    assert spo2.load_calibration(tmp_path / "broken.json").calibrated is False
    assert spo2.estimate_spo2(0.6, quality=0.2).percent is None          # low quality: no number
    assert spo2.estimate_spo2(None, quality=0.9).percent is None
    assert spo2.estimate_spo2(9.0, quality=0.9).percent == spo2.SPO2_RANGE[0]   # clipped, never below range
    assert spo2.ratio_of_ratios(np.array([0.3, 1.0, 0.0])) is None


@pytest.mark.parametrize(
    ("ratios", "reference", "message"),
    [([0.5], [97.0], "at least 2"), ([0.5, 0.5], [97.0, 95.0], "do not vary"), ([0.5, np.nan], [97, 95], "finite"),
     ([0.5, 0.6], [97.0], "same length")],
)
def test_calibration_rejects_bad_readings(tmp_path, ratios, reference, message):
    with pytest.raises(ValueError, match=message):
        spo2.calibrate(ratios, reference, path=tmp_path / "c.json")


def synthetic_spo2_traces(
    n: int, *, seq_len: int = 200, sampling_rate: float = 30.0, seed: int = 0, a: float = 110.0, b: float = 25.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ROI traces (relative R, G, B change per frame) with SpO2 labels.

    Each trace pulses at a random rate (50-120 beats/min) with a random blue amplitude; the red amplitude is
    ``ratio * blue`` with ``ratio = (a - spo2) / b`` (an assumed linear law), green is the strongest; breathing,
    illumination drift and sensor noise are added. SpO2 is uniform in 85-100 %.

    Returns
    -------
    features : ndarray, shape (n, seq_len, 3), float32
    spo2_percent : ndarray, shape (n,), float32
    """
    rng = np.random.default_rng(seed)
    t = np.arange(seq_len) / sampling_rate
    spo2 = rng.uniform(85.0, 100.0, n)
    features = np.empty((n, seq_len, 3), dtype=np.float32)
    for i in range(n):
        rate_hz = rng.uniform(50, 120) / 60.0
        phase = 2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi)
        wave = np.sin(phase) + 0.3 * np.sin(2 * phase + 0.6)
        blue = rng.uniform(0.0015, 0.004)
        ratio = (a - spo2[i]) / b
        amplitudes = np.array([ratio * blue, rng.uniform(1.2, 1.6) * blue, blue])
        breath = 0.001 * np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * t)
        drift = rng.normal(0, 0.002) * t / t[-1]
        noise = rng.normal(0, 0.0004, (seq_len, 3))
        features[i] = (wave[:, None] * amplitudes[None, :] + (breath + drift)[:, None] + noise).astype(np.float32)
    return features, spo2.astype(np.float32)


def test_tiny_transformer_learns_spo2_from_synthetic_traces(tmp_path):
    torch = pytest.importorskip("torch")
    from smartmirror.vitals.spo2_model import (
        N_HEADS,
        N_LAYERS,
        TinyTransformer,
        TrainedSpO2Model,
        augment,
        train_spo2_transformer,
    )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_x, train_y = synthetic_spo2_traces(240, seq_len=64, sampling_rate=15.0, seed=1)
        test_x, test_y = synthetic_spo2_traces(80, seq_len=64, sampling_rate=15.0, seed=2)
        trained = train_spo2_transformer(train_x, train_y, epochs=14, patience=6, lr=1e-3, seed=0)
    finally:
        torch.set_num_threads(threads)
    model = trained.model
    assert len(model.blocks) == N_LAYERS and model.blocks[0].attention.num_heads == N_HEADS
    assert model.embed.out_features == 32
    predicted = trained.predict(test_x)
    baseline = np.abs(test_y - train_y.mean()).mean()
    assert np.abs(predicted - test_y).mean() < 0.5 * baseline            # it learned the (synthetic) law
    assert trained.history[-1]["epoch"] <= 14 and "no data folder" in trained.trained_on
    trained.save(str(tmp_path / "tiny.pt"))
    again = TrainedSpO2Model.load(str(tmp_path / "tiny.pt"))
    assert np.allclose(again.predict(test_x[:4]), predicted[:4], atol=1e-4)
    # the augmentations change the input but keep its shape
    batch = torch.from_numpy(train_x[:8])
    assert augment(batch, torch.Generator().manual_seed(0)).shape == batch.shape
    assert isinstance(model, TinyTransformer)
    with pytest.raises(ValueError, match="limited to"):
        train_spo2_transformer(np.zeros((20, 300, 3)), np.zeros(20))
