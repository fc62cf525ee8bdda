"""The CPU-compiled emotion nets (traced without the tracer's own re-run check) give the eager nets' outputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_compiled_ensemble_matches_the_eager_one_on_a_real_face(astronaut_bgr, astronaut_face):
    from smartmirror.emotion.catalog import load_model
    from smartmirror.emotion.inference import EmotionPredictor, compile_for_cpu
    from smartmirror.emotion.model import fuse_batchnorm

    x, y, w, h = astronaut_face.bbox
    predictor = EmotionPredictor()
    batch = np.stack([predictor.prepare(astronaut_bgr[y:y + h, x:x + w]),
                      predictor.prepare(astronaut_bgr[y + h // 3:y + h + h // 3, x:x + w])])  # the face, and lower
    eager = fuse_batchnorm(load_model(None)).eval()
    cfg = eager.cfg
    with torch.no_grad():
        expected = eager(torch.from_numpy(batch)).numpy()
        compiled = compile_for_cpu(fuse_batchnorm(load_model(None)).eval(), cfg)
        got = compiled(torch.from_numpy(batch)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not np.allclose(expected[0], expected[1], atol=1e-3)  # two crops, two different answers
