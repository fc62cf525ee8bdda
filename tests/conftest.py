"""Shared fixtures: the real astronaut portrait, its FaceMesh observation, and cached synthetic clips."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """The public-domain astronaut portrait (scikit-image), BGR uint8, 512x512."""
    from smartmirror.synth import default_face_image

    return default_face_image()


@pytest.fixture(scope="session")
def astronaut_face(astronaut_bgr):
    """FaceMesh's observation of the astronaut portrait (static-image mode)."""
    from smartmirror.face import FaceTracker

    with FaceTracker(static_image_mode=True) as tracker:
        face = tracker.process(astronaut_bgr)
    assert face is not None
    return face


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory):
    """Factory: ``synth_clip(**config) -> (clip_dir, truth)``; identical configs are made once per session."""
    from smartmirror.synth import SynthConfig, load_truth, make_clip

    root = tmp_path_factory.mktemp("synth")

    def make(video_name: str = "vid.avi", **config):
        cfg = SynthConfig(**config)
        key = hashlib.sha1(json.dumps([video_name, asdict(cfg)], sort_keys=True).encode()).hexdigest()[:12]
        directory = root / key
        if (directory / "truth.json").exists():
            return directory, load_truth(directory)
        return directory, make_clip(directory, cfg, video_name=video_name)

    return make


def pytest_collection_modifyitems(config, items):
    """Refuse to pass when nothing was collected (CI must not read 'no tests' as success)."""
    if not items:
        raise pytest.UsageError("no tests collected")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
