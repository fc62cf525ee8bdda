"""Where SmartMirror keeps its files: bundled weights, and the user's own data and cache."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: The repository's weights/ folder (override with SMARTMIRROR_WEIGHTS_DIR).
WEIGHTS_DIR = Path(os.environ.get("SMARTMIRROR_WEIGHTS_DIR", Path(__file__).resolve().parents[1] / "weights"))


def weights_path(name: str) -> Path:
    """Path of a bundled model file; FileNotFoundError names the script that makes it when missing."""
    path = WEIGHTS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"Missing model file {path}; see weights/README.md for the script that makes it")
    return path


def user_data_dir() -> Path:
    """Per-user data folder (history, agent state, calibrations), created on first use."""
    path = Path(os.environ.get("SMARTMIRROR_DATA_DIR", platformdirs.user_data_dir("smartmirror")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_dir() -> Path:
    """Per-user cache folder (the generated demo clip), created on first use."""
    path = Path(os.environ.get("SMARTMIRROR_CACHE_DIR", platformdirs.user_cache_dir("smartmirror")))
    path.mkdir(parents=True, exist_ok=True)
    return path
