"""face-api.js's FaceExpressionNet rebuilt in PyTorch: 112x112 RGB face -> 7 expressions.

Architecture (read from the MIT TypeScript source of face-api.js, ``faceFeatureExtractor/`` and
``faceExpressionNet/``)::

    RGB 0..255, minus the mean (122.782, 117.001, 104.298), divided by 255
      -> dense block 0: 3x3 conv stride 2 (+bias)              112 -> 56,  32 channels
      -> dense block 1..3: separable 3x3 stride 2 (+bias)       -> 28, 14, 7;  64, 128, 256 channels
      -> 7x7 average pool (valid) -> 256 features -> fully connected -> 7 logits

A dense block is four convolutions ``c0..c3`` whose inputs are the ReLU of the running sum of the earlier outputs:
``o1 = relu(c0(x))``, ``o2 = c1(o1)``, ``o3 = c2(relu(o1 + o2))``, ``o4 = c3(relu(o1 + o2 + o3))``, output
``relu(o1 + o2 + o3 + o4)``. Every convolution uses TensorFlow's "same" padding, so a stride-2 layer on an even
input pads one pixel after (bottom/right) and none before. Separable convolutions are TF's
``separableConv2d`` (depthwise with the stride, then pointwise) followed by one bias.

The network's outputs are in face-api's order (neutral, happy, sad, angry, fearful, disgusted, surprised); the
registered cfg names them in this project's spelling (``labels.normalize_label``). Weights are converted from the
npm package ``@vladmandic/face-api`` 1.7.15 by ``scripts/convert_face_api_weights.py``.

Licences: face-api.js, MIT, Copyright (c) 2018 Vincent Mühler; @vladmandic/face-api, MIT, Copyright (c) Vladimir
Mandic.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.emotion.labels import normalize_label
from smartmirror.emotion.model import ModelCfg, _tf_same_pad, register_model

#: face-api.js's expression names, in its output order.
FACE_API_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")

#: The same classes in this project's spelling (neutral, happy, sad, angry, fear, disgust, surprise).
FACE_EXPRESSION_LABELS: tuple[str, ...] = tuple(normalize_label(label) for label in FACE_API_LABELS)

#: face-api.js's per-channel RGB mean, in 0..255 pixel units.
MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)


class SamePad(nn.Module):
    """TensorFlow "same" zero padding for a ``kernel`` x ``kernel`` window at ``stride`` (asymmetric when odd)."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _tf_same_pad(int(x.shape[-2]), self.kernel, self.stride)
        left, right = _tf_same_pad(int(x.shape[-1]), self.kernel, self.stride)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom))


class TfConv(nn.Module):
    """3x3 convolution with TF "same" padding and a bias (face-api's ``conv0`` of the first block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.pad = SamePad(3, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class TfSeparableConv(nn.Module):
    """TF ``separableConv2d`` (3x3 depthwise at ``stride``, "same"; 1x1 pointwise) plus one bias."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        # stride 1: TF "same" is the symmetric 1-pixel padding the convolution does itself (no copy)
        self.pad = SamePad(3, stride) if stride > 1 else nn.Identity()
        padding = 0 if stride > 1 else 1
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride=stride, padding=padding, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pad(x)))


class DenseBlock4(nn.Module):
    """face-api's ``denseBlock4``: four convolutions, each fed the ReLU of the sum of the earlier outputs."""

    def __init__(self, in_channels: int, out_channels: int, first: bool = False):
        super().__init__()
        self.conv0 = TfConv(in_channels, out_channels, 2) if first else TfSeparableConv(in_channels, out_channels, 2)
        self.conv1 = TfSeparableConv(out_channels, out_channels)
        self.conv2 = TfSeparableConv(out_channels, out_channels)
        self.conv3 = TfSeparableConv(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = torch.relu(self.conv0(x))
        total = out1 + self.conv1(out1)
        total = total + self.conv2(torch.relu(total))
        total = total + self.conv3(torch.relu(total))
        return torch.relu(total)


class FaceExpressionNet(nn.Module):
    """face-api.js FaceExpressionNet: four dense blocks, 7x7 average pool, one fully connected layer.

    Input (batch, 3, 112, 112) RGB scaled to [0, 1] (the network subtracts face-api's channel means itself);
    output logits (batch, num_classes) in face-api's class order (softmax gives face-api's probabilities).
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        if in_channels != 3:
            raise ValueError(f"FaceExpressionNet takes RGB input (in_channels=3), got {in_channels}")
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB).view(1, 3, 1, 1) / 255.0, persistent=False)
        blocks, channels = [], in_channels
        for i, width in enumerate(widths):
            blocks.append(DenseBlock4(channels, width, first=i == 0))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(x - self.mean_rgb)
        features = F.avg_pool2d(features, 7, 2)  # 7x7 "valid", as face-api: (n, 256, 1, 1) for a 112 input
        return self.fc(features.flatten(1))


@register_model(
    ModelCfg(
        file="emotion_face_expression_net.pt",
        input_size=(112, 112),
        in_channels=3,
        mean=0.0,
        std=1.0,
        labels=FACE_EXPRESSION_LABELS,
    )
)
def face_expression_net(num_classes: int = 7, in_channels: int = 3, **kwargs: Any) -> FaceExpressionNet:
    """face-api.js's FaceExpressionNet (bundled weights converted from the npm package)."""
    return FaceExpressionNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
