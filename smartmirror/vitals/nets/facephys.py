"""FacePhys (open-rppg 0.1.1, ``FacePhys.rlap``) ported from Keras 3 to PyTorch.

A streaming state-space rPPG network by the open-rppg author (Kegang Wang et al.): four blocks of
"spatial conv + per-pixel temporal normalisation (exponential moving average) + complex-valued selective
state-space model (SSD) over the frame's pooled features", then two SSM layers and a linear head giving one
pulse sample per frame. The original runs it frame by frame (``FacePhys.step``); this port computes the same
recurrences over chunks of frames at once (exact matrix forms of the moving averages and of the SSM scan), so
a clip is processed with a few large tensor operations instead of one small step per frame, and the state is
carried from chunk to chunk, so streaming works too.

Input contract (as the original): RGB face crops, 36 x 36, uint8, scaled by 1/255, at 30 frames/s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.vitals.nets.layers import (
    SpatialBlock,
    StatefulPulseNet,
    approx_cos,
    approx_exp,
    approx_sin,
    causal_depthwise_conv,
    lower_triangular_decay,
)

FRAME_INTERVAL_S = 1.0 / 30.0


class EmaNorm(nn.Module):
    """Per-pixel temporal normalisation by exponential moving mean and variance (FacePhys ``TNM.step``)."""

    def __init__(self, channels: int, height: int, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.lbd = nn.Parameter(torch.zeros(channels))
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.init_mean = nn.Parameter(torch.zeros(channels, height, width))
        self.init_log_var = nn.Parameter(torch.full((channels, height, width), -3.0))

    def init_state(self) -> dict[str, torch.Tensor]:
        return {"mean": self.init_mean, "var": torch.exp(self.init_log_var)}

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """x: (L, C, H, W) -> normalised (L, C, H, W), new state.

        Computed channel-major, (C, L, H*W): the moving averages are batched matrix products over the channels,
        which onnxruntime runs faster than the equivalent ``einsum`` (the exported graph: 5-10 % less CPU per
        clip, the same pulse to the last bit on benchmarks/facephys_speed.py's input).
        """
        length, channels, height, width = x.shape
        decay = 1.0 - 0.6931 / torch.exp(self.lbd) * FRAME_INTERVAL_S
        weights, carry = lower_triangular_decay(decay, length)  # (C, t, s), (C, t)
        xs = x.reshape(length, channels, height * width).transpose(0, 1)  # (C, s, H*W)
        carry = carry[:, :, None]
        mean = weights @ xs + carry * state["mean"].reshape(channels, 1, height * width)
        centred = xs - mean
        var = weights @ (centred * centred) + carry * state["var"].reshape(channels, 1, height * width)
        y = centred * torch.rsqrt(var + self.eps) * self.gamma[:, None, None] + self.beta[:, None, None]
        frame = (channels, height, width)
        return (y.transpose(0, 1).reshape(length, *frame),
                {"mean": mean[:, -1].reshape(frame), "var": var[:, -1].reshape(frame)})


class ComplexSSM(nn.Module):
    """FacePhys's ``SSMrPPG``: a Mamba-2 style selective SSM with a complex diagonal state matrix.

    Per head h: ``s_t = a_t s_{t-1} + dt_t x_t B_t`` with complex ``a_t = exp(dt_t A_re) e^{i dt_t A_im}``,
    output ``y_t = s_t . C_t`` (real and imaginary parts both kept), gated RMS norm, output projection.
    """

    def __init__(self, d_model: int, headdim: int, d_state: int, expand: int = 2, k_conv: int = 4):
        super().__init__()
        self.d_inner = expand * d_model
        self.headdim = headdim
        self.d_state = d_state
        self.nheads = self.d_inner // headdim
        self.k_conv = k_conv
        conv_dim = self.d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, 3 * self.d_inner + 2 * d_state + self.nheads, bias=False)
        self.conv_weight = nn.Parameter(torch.zeros(conv_dim, 1, k_conv))
        self.conv_bias = nn.Parameter(torch.zeros(conv_dim))
        self.A_log = nn.Parameter(torch.zeros(self.nheads, 2))
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.D = nn.Parameter(torch.zeros(2 * self.nheads))
        self.init_conv_state = nn.Parameter(torch.zeros(k_conv, conv_dim))
        self.init_ssm_state = nn.Parameter(torch.zeros(self.nheads, headdim, d_state, 2))
        self.norm_weight = nn.Parameter(torch.ones(2 * self.d_inner))
        self.out_proj = nn.Linear(2 * self.d_inner, d_model, bias=False)

    def init_state(self) -> dict[str, torch.Tensor]:
        return {"ssm": self.init_ssm_state, "conv": self.init_conv_state}  # ssm: (H, P, N, [real, imaginary])

    def forward(self, u: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """u: (L, d_model) -> (L, d_model), new state."""
        length = u.shape[0]
        d_inner, d_state, nheads, headdim = self.d_inner, self.d_state, self.nheads, self.headdim
        zxbcdt = self.in_proj(u)
        z = zxbcdt[:, : 2 * d_inner]
        xbc = zxbcdt[:, 2 * d_inner : 3 * d_inner + 2 * d_state]
        dt_param = zxbcdt[:, 3 * d_inner + 2 * d_state :]
        sequence = torch.cat([state["conv"], xbc], dim=0)
        xbc = F.relu6(causal_depthwise_conv(sequence, self.conv_weight, self.conv_bias))[-length:]
        x = xbc[:, :d_inner].reshape(length, nheads, headdim)
        b = xbc[:, d_inner : d_inner + d_state]
        c = xbc[:, d_inner + d_state :]

        dt = torch.clamp(approx_exp(dt_param + self.dt_bias), 0, 6) * FRAME_INTERVAL_S * 30  # (L, H)
        # a_t = |a_t| e^(i phi_t), built from the original's polynomial exp/cos/sin; complex products are written
        # out in real arithmetic (so the graph exports to ONNX): decay from s to t is e^(sum log|a|) e^(i sum phi).
        magnitude = approx_exp(dt * -torch.exp(self.A_log[:, 0]))
        angle = dt * self.A_log[:, 1]
        re, im = magnitude * approx_cos(angle), magnitude * approx_sin(angle)
        modulus = torch.sqrt(re * re + im * im)
        cum_log = torch.cumsum(torch.log(modulus), dim=0)  # (L, H)
        cum_arg = torch.cumsum(2 * torch.atan(im / (modulus + re)), dim=0)  # arg(a) by the half-angle formula
        causal = torch.ones(length, length, dtype=torch.bool, device=u.device).tril()
        seg_log = cum_log.t()[:, :, None] - cum_log.t()[:, None, :]  # (H, t, s)
        seg_arg = cum_arg.t()[:, :, None] - cum_arg.t()[:, None, :]
        scale = torch.where(causal, torch.exp(torch.where(causal, seg_log, 0.0)), 0.0)
        scale = scale * ((c @ b.t())[None] * dt.t()[:, None, :])  # (H, t, s)
        xh = x.permute(1, 0, 2)  # (H, s, P)
        y_re = (scale * torch.cos(seg_arg)) @ xh  # (H, t, P)
        y_im = (scale * torch.sin(seg_arg)) @ xh
        ssm_re, ssm_im = state["ssm"][..., 0], state["ssm"][..., 1]  # (H, P, N)
        q_re, q_im = ssm_re @ c.t(), ssm_im @ c.t()  # (H, P, t)
        start = torch.exp(cum_log).t()[:, None, :]  # (H, 1, t)
        start_re, start_im = start * torch.cos(cum_arg).t()[:, None, :], start * torch.sin(cum_arg).t()[:, None, :]
        y_re = y_re + (start_re * q_re - start_im * q_im).transpose(1, 2)
        y_im = y_im + (start_re * q_im + start_im * q_re).transpose(1, 2)
        end_mod = torch.exp(cum_log[-1] - cum_log) * dt  # (s, H)
        end_arg = cum_arg[-1] - cum_arg
        xb_re = (xh * (end_mod * torch.cos(end_arg)).t()[:, :, None]).transpose(1, 2) @ b  # (H, P, N)
        xb_im = (xh * (end_mod * torch.sin(end_arg)).t()[:, :, None]).transpose(1, 2) @ b
        total_mod, total_arg = torch.exp(cum_log[-1])[:, None, None], cum_arg[-1][:, None, None]
        carry_re, carry_im = total_mod * torch.cos(total_arg), total_mod * torch.sin(total_arg)
        new_ssm = torch.stack([carry_re * ssm_re - carry_im * ssm_im + xb_re,
                               carry_re * ssm_im + carry_im * ssm_re + xb_im], dim=-1)
        y_re, y_im = y_re.permute(1, 0, 2), y_im.permute(1, 0, 2)  # (t, H, P)

        y_real = y_re + self.D[0::2][None, :, None] * x
        y_imag = y_im  # D of the imaginary part multiplies zero
        y = torch.stack([y_real, y_imag], dim=2).reshape(length, 2 * d_inner)
        y = y * F.relu6(z)
        y = y * torch.rsqrt(torch.mean(y * y, dim=-1, keepdim=True) + 1e-5) * self.norm_weight
        return self.out_proj(y), {"ssm": new_ssm, "conv": sequence[-self.k_conv :]}


class SpatialSSMLayer(nn.Module):
    """FacePhys ``SSConv``: normalise, convolve, pool to a vector, SSM over time, add back, convolve."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.norm = EmaNorm(channels, height, width)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1_dense = nn.Conv2d(channels, 2 * channels, 1)
        self.ssm = ComplexSSM(2 * channels, headdim=channels // 8, d_state=128)
        self.proj = nn.Linear(2 * channels, channels, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def init_state(self) -> dict:
        return {"norm": self.norm.init_state(), "ssm": self.ssm.init_state()}

    def forward(self, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        x0, norm_state = self.norm(x, state["norm"])
        x1 = F.relu6(self.conv1_dense(self.conv1(x0)))
        pooled = x1.mean(dim=(2, 3))
        temporal, ssm_state = self.ssm(pooled, state["ssm"])
        x0 = x0 + self.proj(temporal)[:, :, None, None]
        return F.relu6(self.conv2(x0)), {"norm": norm_state, "ssm": ssm_state}


class SpatialSSMBlock(SpatialBlock):
    """FacePhys ``SSCBlock``: 1x1 projection, two spatial SSM layers with a residual, 2x2 strided downsampling."""

    def __init__(self, in_channels: int, channels: int, height: int, width: int, n_layers: int = 2):
        super().__init__(in_channels, channels, [SpatialSSMLayer(channels, height, width) for _ in range(n_layers)])


class FacePhys(StatefulPulseNet):
    """The FacePhys network: (L, 3, 36, 36) frames in [0, 1] -> (L,) pulse, with carried state.

    Use :meth:`init_state` for a fresh clip, then feed consecutive chunks of any length with the state the
    previous call returned; the result equals running the original frame by frame.
    """

    input_size = (36, 36)
    fps = 30.0

    def __init__(self, channels: int = 32, n_blocks: int = 4, size: int = 36):
        super().__init__()
        blocks, in_channels = [], 3
        for _ in range(n_blocks):
            blocks.append(SpatialSSMBlock(in_channels, channels, size, size))
            in_channels, size = channels, (size + 1) // 2
        self.blocks = nn.ModuleList(blocks)
        self.out_proj = nn.Linear(channels, 32, bias=False)
        self.head = nn.ModuleList(ComplexSSM(32, headdim=8, d_state=16) for _ in range(2))
        self.readout = nn.Linear(32, 1)

