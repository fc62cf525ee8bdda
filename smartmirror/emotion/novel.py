"""NovelEmotionModel: EfficientNet backbone, micro-expression enhancer, two-expert arousal routing.

Architecture::

    image (3 x 224 x 224, [-1, 1])
      -> MicroExpEnhancer        x + factor * Conv2(ReLU(Conv1(x)))   (amplifies small local intensity changes)
      -> EfficientNet-B3 (timm)  global-pooled features (1536)
      -> DynamicEmotionRouting   gate(x) mixes a high-arousal and a low-arousal expert MLP
      -> heads                   8-class logits, valence (tanh), arousal (tanh)

The trainer supervises the gate with the circumplex arousal of each label (high-arousal classes such as angry and
surprise route to the first expert, sad, tired and neutral to the second), which is what biases the experts.
No weights ship for it (``pretrained=False``; nothing is downloaded): train it with ``smartmirror train emotion``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from smartmirror.emotion.labels import EMOTION_LABELS
from smartmirror.emotion.model import ModelCfg, register_model


class MicroExpEnhancer(nn.Module):
    """Residual enhancement of subtle local changes: ``x + factor * conv2(relu(conv1(x)))``.

    ``conv2`` starts at zero, so the module begins as the identity and learns what to amplify.
    """

    def __init__(self, channels: int = 3, hidden: int = 16, factor: float = 0.5, kernel_size: int = 3):
        super().__init__()
        self.factor = factor
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(hidden, channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.factor * self.conv2(torch.relu(self.conv1(x)))


class DynamicEmotionRouting(nn.Module):
    """Two gated experts: ``out = g_high * expert_high(x) + g_low * expert_low(x)``, ``g = softmax(gate(x))``."""

    def __init__(self, in_features: int, hidden: int = 512, dropout: float = 0.3):
        super().__init__()
        self.gate = nn.Linear(in_features, 2)

        def expert() -> nn.Sequential:
            return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.SiLU(inplace=True))

        self.expert_high = expert()
        self.expert_low = expert()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mixed features (n, hidden), gate weights (n, 2): [high-arousal, low-arousal])."""
        gate = torch.softmax(self.gate(x), dim=1)
        mixed = gate[:, :1] * self.expert_high(x) + gate[:, 1:] * self.expert_low(x)
        return mixed, gate


class NovelEmotionModel(nn.Module):
    """EfficientNet backbone + MicroExpEnhancer + DynamicEmotionRouting + class/valence/arousal heads.

    Parameters
    ----------
    num_classes : int
        Emotion classes (8 by default).
    in_channels : int
        Image channels (3, RGB).
    backbone : str
        A timm model name ("efficientnet_b3" by default; tests use the tiny "test_efficientnet").
    hidden : int
        Width of the routed features.
    enhancer_factor : float
        The enhancer's residual factor.
    dropout : float
        Dropout before each expert.

    Forward returns a dict: ``logits`` (n, num_classes), ``valence`` (n,), ``arousal`` (n,) in [-1, 1], and
    ``gate`` (n, 2).
    """

    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 3,
        backbone: str = "efficientnet_b3",
        hidden: int = 512,
        enhancer_factor: float = 0.5,
        dropout: float = 0.3,
    ):
        super().__init__()
        import timm

        self.enhancer = MicroExpEnhancer(in_channels, factor=enhancer_factor)
        try:
            self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0, in_chans=in_channels)
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise ValueError(f"unknown timm backbone {backbone!r}: {exc}") from None
        features = self.backbone.num_features
        self.routing = DynamicEmotionRouting(features, hidden=hidden, dropout=dropout)
        self.classifier = nn.Linear(hidden, num_classes)
        self.valence_head = nn.Linear(hidden, 1)
        self.arousal_head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(self.enhancer(x))
        mixed, gate = self.routing(features)
        return {
            "logits": self.classifier(mixed),
            "valence": torch.tanh(self.valence_head(mixed)).squeeze(1),
            "arousal": torch.tanh(self.arousal_head(mixed)).squeeze(1),
            "gate": gate,
        }


_NOVEL_CFG = dict(input_size=(224, 224), in_channels=3, mean=0.5, std=0.5, labels=EMOTION_LABELS, face_scale=1.0)


@register_model(ModelCfg(**_NOVEL_CFG))
def novel_emotion_b3(num_classes: int = 8, in_channels: int = 3, **kwargs: Any) -> NovelEmotionModel:
    """The full model: EfficientNet-B3 backbone (1536 features), 224x224 RGB, 8 classes."""
    kwargs.setdefault("backbone", "efficientnet_b3")
    return NovelEmotionModel(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(ModelCfg(**_NOVEL_CFG))
def novel_emotion_b0(num_classes: int = 8, in_channels: int = 3, **kwargs: Any) -> NovelEmotionModel:
    """The same design on EfficientNet-B0 (1280 features): a third of B3's compute, for CPU training."""
    kwargs.setdefault("backbone", "efficientnet_b0")
    return NovelEmotionModel(num_classes=num_classes, in_channels=in_channels, **kwargs)
