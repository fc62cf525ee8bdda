"""Every emotion model by name: ``create_model(name, pretrained=...)``, ``load_model(name or checkpoint)``.

The built-in models register themselves when their modules are imported (the mini-Xception in
:mod:`smartmirror.emotion.model`, FaceExpressionNet in ``faceapi``, the ensemble in ``ensemble``,
NovelEmotionModel in ``novel``); this module imports them all, so a lookup here sees every one.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smartmirror.emotion import ensemble, faceapi, novel  # noqa: F401 - they register their models
from smartmirror.emotion.model import CHECKPOINT_FORMAT, ModelCfg, build_model, registered_cfg, registered_names
from smartmirror.emotion.spec import resolve_model_spec

__all__ = ["create_model", "list_models", "load_checkpoint", "load_model", "model_cfg"]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern, sorted."""
    return [name for name in registered_names() if fnmatch.fnmatch(name, pattern)]


def model_cfg(name: str) -> ModelCfg:
    """The registered default cfg of a model."""
    if name not in registered_names():
        raise ValueError(f"Unknown emotion model {name!r}; choose one of {list_models()}")
    return registered_cfg(name)


def create_model(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``pretrained=True`` loads its bundled weights (in eval mode).

    ``labels`` and ``input_size`` in ``kwargs`` override the cfg (and the class count follows ``labels``);
    other keyword arguments go to the entrypoint; ``None`` values are dropped so the model's defaults apply.

    Raises
    ------
    ValueError
        Unknown name, or ``pretrained=True`` for a model without bundled weights.
    FileNotFoundError
        The bundled weight file is missing.
    """
    return build_model(name, pretrained=pretrained, **kwargs)


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild a model from a trainer checkpoint (``best.pt`` / ``last.pt``), in eval mode.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or a file that is not a SmartMirror emotion checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"emotion checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle of something else
        raise ValueError(f"{path} is not a readable emotion checkpoint: {exc}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a SmartMirror emotion checkpoint (format {CHECKPOINT_FORMAT!r})")
    cfg = ModelCfg.from_dict(checkpoint["cfg"])
    model = create_model(
        checkpoint["model_name"],
        labels=cfg.labels,
        input_size=cfg.input_size,
        face_scale=cfg.face_scale,
        **checkpoint.get("model_kwargs", {}),
    )
    model.cfg = replace(model.cfg, file=str(path), mean=cfg.mean, std=cfg.std)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model


def load_model(spec: str | Path | None = None) -> nn.Module:
    """A ready (eval-mode, pretrained) model from a registered name or a checkpoint path; see resolve_model_spec."""
    spec = resolve_model_spec(spec)
    if spec in list_models():
        return create_model(spec, pretrained=True)
    path = Path(spec).expanduser()
    if path.suffix in {".pt", ".pth"} or path.exists():
        return load_checkpoint(path)
    raise ValueError(f"Unknown emotion model {spec!r}: not a registered name {list_models()} nor a checkpoint file")
