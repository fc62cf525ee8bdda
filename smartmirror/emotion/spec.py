"""Which emotion model to use: a registered name or a trained checkpoint, from the caller or the environment."""

from __future__ import annotations

import os
from pathlib import Path

#: The model used when nothing else is asked for.
DEFAULT_MODEL = "emotion_ensemble"

#: Environment variable naming a registered model or a trained checkpoint that replaces the default.
MODEL_ENV_VAR = "SMARTMIRROR_EMOTION_MODEL"


def resolve_model_spec(spec: str | Path | None = None) -> str:
    """The model to use: ``spec`` if given, else ``$SMARTMIRROR_EMOTION_MODEL``, else the bundled default."""
    if spec is not None and str(spec).strip():
        return str(spec)
    return os.environ.get(MODEL_ENV_VAR, "").strip() or DEFAULT_MODEL
