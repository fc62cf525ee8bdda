"""ME ("Memory-efficient low-latency rPPG", open-rppg 0.1.1 ``ME-chunk.pure`` / ``ME-chunk.rlap``) in PyTorch.

Wang et al. (2025), *Memory-efficient Low-latency Remote Photoplethysmography through Temporal-Spatial State
Space Duality*, arXiv:2504.01774. Four blocks of "per-chunk detrend + normalise, spatial conv, pooled Mamba-2
(real SSD) over time, add back, conv", then two Mamba-2 layers and a linear head. The chunked mode of the
original processes 160 frames at a time and carries the SSM and convolution states between chunks, starting
from a learned initial state (the package's ``state.pkl``).

Input contract (as the original): RGB face crops, 36 x 36, uint8, scaled by 1/255, at 30 frames/s, in chunks of
160 frames (a last partial chunk is padded by repeating its last frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.vitals.nets.layers import SpatialBlock, StatefulPulseNet, causal_depthwise_conv

CHUNK_FRAMES = 160


def detrend_normalise(x: torch.Tensor, eps: float = 2e-6) -> torch.Tensor:
    """ME's ``TNM``: remove the least-squares linear trend over the chunk, divide by the residual RMS.

    x: (L, C, H, W); statistics are per pixel and channel over the L frames.
    """
    length = x.shape[0]
    t = torch.linspace(0, 1, length, dtype=x.dtype, device=x.device)[:, None, None, None]
    mean = x.mean(dim=0, keepdim=True)
    slope = torch.sum((t - 0.5) * (x - mean), dim=0, keepdim=True) / torch.sum((t - 0.5) ** 2)
    residual = x - (slope * t + mean - slope * 0.5)
    return residual / torch.sqrt(torch.mean(residual**2, dim=0, keepdim=True) + eps)


class Mamba2(nn.Module):
    """A Mamba-2 layer (real scalar-times-identity state matrix per head), chunked SSD form with carried state."""

    def __init__(self, d_model: int, headdim: int, d_state: int = 128, expand: int = 2, k_conv: int = 4):
        super().__init__()
        self.d_inner = expand * d_model
        self.headdim = headdim
        self.d_state = d_state
        self.nheads = self.d_inner // headdim
        self.k_conv = k_conv
        conv_dim = self.d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * d_state + self.nheads, bias=False)
        self.conv_weight = nn.Parameter(torch.zeros(conv_dim, 1, k_conv))
        self.conv_bias = nn.Parameter(torch.zeros(conv_dim))
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.A_log = nn.Parameter(torch.zeros(self.nheads))
        self.D = nn.Parameter(torch.zeros(self.nheads))
        self.norm_weight = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.register_buffer("init_ssm_state", torch.zeros(self.nheads, headdim, d_state))
        self.register_buffer("init_conv_state", torch.zeros(k_conv, conv_dim))

    def init_state(self) -> dict[str, torch.Tensor]:
        return {"ssm": self.init_ssm_state, "conv": self.init_conv_state}

    def forward(self, u: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """u: (L, d_model) -> (L, d_model), new state."""
        length = u.shape[0]
        d_inner, d_state, nheads, headdim = self.d_inner, self.d_state, self.nheads, self.headdim
        zxbcdt = self.in_proj(u)
        z = zxbcdt[:, :d_inner]
        xbc = zxbcdt[:, d_inner : 2 * d_inner + 2 * d_state]
        dt = F.softplus(zxbcdt[:, 2 * d_inner + 2 * d_state :] + self.dt_bias)  # (L, H)
        sequence = torch.cat([state["conv"], xbc], dim=0)
        xbc = F.silu(causal_depthwise_conv(sequence, self.conv_weight, self.conv_bias))[-length:]
        x = xbc[:, :d_inner].reshape(length, nheads, headdim)
        b = xbc[:, d_inner : d_inner + d_state]
        c = xbc[:, d_inner + d_state :]

        log_a = dt * -torch.exp(self.A_log)  # (L, H), log of the per-step decay
        cum = torch.cumsum(log_a, dim=0)
        segment = cum.t()[:, :, None] - cum.t()[:, None, :]  # (H, t, s)
        causal = torch.ones(length, length, dtype=torch.bool, device=u.device).tril()
        decay = torch.exp(torch.where(causal, segment, torch.full((), -torch.inf, device=u.device)))
        weights = decay * ((c @ b.t())[None] * dt.t()[:, None, :])
        y = torch.einsum("hts,shp->thp", weights, x)
        y = y + torch.exp(cum)[:, :, None] * torch.einsum("hpn,tn->thp", state["ssm"], c)
        to_end = torch.exp(cum[-1][None] - cum) * dt
        new_ssm = torch.exp(cum[-1])[:, None, None] * state["ssm"] + torch.einsum("sh,shp,sn->hpn", to_end, x, b)

        y = (y + x * self.D[None, :, None]).reshape(length, d_inner)
        y = y * F.silu(z)
        y = y * torch.rsqrt(torch.mean(y * y, dim=-1, keepdim=True) + 1e-5) * self.norm_weight
        return self.out_proj(y), {"ssm": new_ssm, "conv": sequence[-self.k_conv :]}


class SpatialMambaLayer(nn.Module):
    """ME ``SSConv`` in chunk mode."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1_dense = nn.Conv2d(channels, 2 * channels, 1)
        self.mamba = Mamba2(2 * channels, headdim=channels, d_state=128, k_conv=12)
        self.proj = nn.Linear(2 * channels, channels, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def init_state(self) -> dict:
        return self.mamba.init_state()

    def forward(self, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        x0 = detrend_normalise(x)
        x1 = F.relu(self.conv1_dense(self.conv1(x0)))
        temporal, new_state = self.mamba(x1.mean(dim=(2, 3)), state)
        x0 = x0 + self.proj(temporal)[:, :, None, None]
        return F.relu(self.conv2(x0)), new_state


class SpatialMambaBlock(SpatialBlock):
    """ME ``SSCBlock``: 1x1 projection, two spatial Mamba layers with a residual, 2x2 strided downsampling."""

    def __init__(self, in_channels: int, channels: int, n_layers: int = 2):
        super().__init__(in_channels, channels, [SpatialMambaLayer(channels) for _ in range(n_layers)])


class MENet(StatefulPulseNet):
    """The ME network (``InfinitePulse``), chunk mode: (160, 3, 36, 36) frames in [0, 1] -> (160,) pulse."""

    input_size = (36, 36)
    fps = 30.0
    chunk_frames = CHUNK_FRAMES

    def __init__(self, channels: int = 32, n_blocks: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList(
            SpatialMambaBlock(3 if i == 0 else channels, channels) for i in range(n_blocks)
        )
        self.out_proj = nn.Linear(channels, 32, bias=False)
        self.head = nn.ModuleList(Mamba2(32, headdim=32, d_state=128, k_conv=4) for _ in range(2))
        self.readout = nn.Linear(32, 1)

