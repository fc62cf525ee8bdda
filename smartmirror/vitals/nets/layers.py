"""Small building blocks shared by the ported open-rppg networks.

The originals are Keras 3 models; these helpers reproduce Keras semantics that PyTorch lacks
(TensorFlow "same" padding for strided convolutions) and the polynomial ``exp``/``sin``/``cos`` that
FacePhys uses in its per-frame step (the "NPU hack" of the original: it changes results by up to ~1e-3
relative, so the port keeps it to match the reference).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_INV_PI_HALF = 0.6366197723675813
_PI_HALF = 1.5707963267948966
_LN2 = 0.69314718056
_INV_LN2 = 1.44269504089
_EXP_TABLE_MIN, _EXP_TABLE_MAX = -20, 20


def approx_exp(x: torch.Tensor) -> torch.Tensor:
    """FacePhys's table-and-polynomial ``exp`` (k = trunc(x/ln2 + 0.5), 5th-order Taylor of the rest)."""
    k = x * _INV_LN2 + 0.5
    k = torch.where(k >= 0, torch.floor(k), torch.ceil(k))  # trunc, spelt so that it exports to ONNX
    r = x - k * _LN2
    poly = 1 + r * (1.0 + r * (0.5 + r * (0.166666667 + r * (0.041666667 + r * 0.008333333))))
    k = k.clamp(_EXP_TABLE_MIN, _EXP_TABLE_MAX - 1)
    return poly * torch.pow(2.0, k)


def approx_sin(x: torch.Tensor) -> torch.Tensor:
    """FacePhys's range-reduced polynomial ``sin``."""
    q = torch.round(x * _INV_PI_HALF)
    r = x - q * _PI_HALF
    r2 = r * r
    m_cos = q - 2.0 * torch.floor(q * 0.5)
    rem4 = q - 4.0 * torch.floor(q * 0.25)
    m_neg = torch.floor(rem4 * 0.5)
    s_c1, s_c2 = -0.166666667, 0.008333333
    c_c1, c_c2 = -0.500000000, 0.041666667
    c1 = s_c1 + m_cos * (c_c1 - s_c1)
    c2 = s_c2 + m_cos * (c_c2 - s_c2)
    head = r + m_cos * (1.0 - r)
    sign = 1.0 - 2.0 * m_neg
    return sign * head * (1.0 + r2 * (c1 + r2 * c2))


def approx_cos(x: torch.Tensor) -> torch.Tensor:
    """FacePhys's ``cos`` (its ``sin`` shifted by pi/2, with the original's constant)."""
    return approx_sin(x + 1.57079632679)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow/Keras ``padding="same"`` (extra pixel at the bottom/right when odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        pad_h = max((math.ceil(height / sh) - 1) * sh + kh - height, 0)
        pad_w = max((math.ceil(width / sw) - 1) * sw + kw - width, 0)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def causal_depthwise_conv(sequence: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Depthwise causal convolution over time.

    ``sequence`` is (n, channels), already prefixed with the carried state; ``weight`` is (channels, 1, k).
    Returns (n - k + 1, channels): output i covers inputs i .. i + k - 1 ("valid" convolution).
    """
    out = F.conv1d(sequence.t().unsqueeze(0), weight, bias, groups=weight.shape[0])
    return out[0].t()


def lower_triangular_decay(decay: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of an exponential moving average over ``length`` steps, per channel.

    For ``m_t = (1 - d) x_t + d m_{t-1}``: returns ``W`` (C, L, L) with ``W[c, t, s] = (1 - d) d^(t - s)`` for
    ``s <= t`` and ``carry`` (C, L) with ``carry[c, t] = d^(t + 1)``, so ``m = W @ x + carry * m_{-1}``.
    Built in float64 for accuracy.
    """
    d = decay.double()[:, None, None]
    t = torch.arange(length, dtype=torch.float64, device=decay.device)
    lag = t[:, None] - t[None, :]
    weights = torch.where(lag >= 0, (1 - d) * d ** lag.clamp(min=0), torch.zeros((), dtype=torch.float64))
    carry = decay.double()[:, None] ** (t[None, :] + 1)
    return weights.to(decay.dtype), carry.to(decay.dtype)


class SpatialBlock(nn.Module):
    """The streaming networks' ``SSCBlock``: 1x1 projection, stateful layers with a residual, 2x2 strided
    downsampling. Subclasses pass their layers (FacePhys: spatial SSM layers; ME: spatial Mamba layers)."""

    def __init__(self, in_channels: int, channels: int, layers: list[nn.Module]):
        super().__init__()
        self.in_proj = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.layers = nn.ModuleList(layers)
        self.downsample = SameConv2d(channels, channels, 2, stride=2)

    def init_state(self) -> list:
        return [layer.init_state() for layer in self.layers]

    def forward(self, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        x = x1 = self.in_proj(x)
        new_state = []
        for layer, layer_state in zip(self.layers, state, strict=True):
            x, s = layer(x, layer_state)
            new_state.append(s)
        return self.downsample(x + x1), new_state


class StatefulPulseNet(nn.Module):
    """The shared skeleton of the streaming pulse networks (FacePhys, ME): spatial blocks per frame, a spatial
    mean, a projection, temporal state-space layers, and a linear readout; every layer carries a state across
    calls so a clip can be fed chunk by chunk. Subclasses build ``blocks``, ``out_proj``, ``head``, ``readout``.
    """

    blocks: nn.ModuleList
    out_proj: nn.Module
    head: nn.ModuleList
    readout: nn.Module

    def init_state(self) -> dict:
        return {"blocks": [b.init_state() for b in self.blocks], "head": [h.init_state() for h in self.head]}

    def forward(self, frames: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
        """frames: (L, 3, H, W) float in [0, 1] -> ((L,) pulse, new state)."""
        state = self.init_state() if state is None else state
        x = frames
        block_states = []
        for block, block_state in zip(self.blocks, state["blocks"], strict=True):
            x, s = block(x, block_state)
            block_states.append(s)
        x = self.out_proj(x.mean(dim=(2, 3)))
        head_states = []
        for layer, layer_state in zip(self.head, state["head"], strict=True):
            x, s = layer(x, layer_state)
            head_states.append(s)
        return self.readout(x)[:, 0], {"blocks": block_states, "head": head_states}
