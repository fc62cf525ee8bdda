"""The trainable rPPG networks.

- :class:`ResNetTCN`: a ResNet-18 trunk (timm, random init: no hub download) applied to every frame,
  global-average pooled, then a 3-layer temporal convolution head (512 -> 256 -> 128 -> 1, kernel 3, padding 1)
  giving one pulse sample per frame.
- :class:`UltraLightNet`: ~20K parameters; conv 3->16 (5x5, stride 2), max-pool 2, conv 16->32 (3x3),
  max-pool 3 on 36 x 36 frames, features averaged over a ~180-frame window, then 288 -> 64 -> 32 -> 1 giving the
  window's heart rate in beats/min.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def standardise_window(frames: torch.Tensor) -> torch.Tensor:
    """Standardise every pixel and channel over the window (zero mean, unit sd in time).

    frames: (B, T, C, H, W) in [0, 1]. What is left is each pixel's change over time; the pulse, common to
    all skin pixels, then stands out in any spatial average, while pixels with large changes (edges that move)
    no longer dominate.
    """
    centred = frames - frames.mean(dim=1, keepdim=True)
    return centred / centred.std(dim=1, keepdim=True).clamp(min=2e-3)


class ResNetTCN(nn.Module):
    """ResNet-18 per frame + temporal conv head: (B, T, 3, H, W) in [0, 1] -> (B, T) pulse (arbitrary units).

    Parameters
    ----------
    width : int
        Channels of the trunk's first stage (64 = the real ResNet-18; smaller for tests and CPUs).
    """

    def __init__(self, width: int = 64):
        super().__init__()
        import timm

        self.width = width
        self.trunk = timm.create_model(
            "resnet18", pretrained=False, num_classes=0, global_pool="avg",
            **({} if width == 64 else {"channels": (width, 2 * width, 4 * width, 8 * width)}),
        )
        features = self.trunk.num_features
        self.head = nn.Sequential(
            nn.Conv1d(features, 256, 3, padding=1), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Conv1d(256, 128, 3, padding=1), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Conv1d(128, 1, 3, padding=1),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, length = frames.shape[:2]
        x = standardise_window(frames).flatten(0, 1)
        features = self.trunk(x).view(batch, length, -1).transpose(1, 2)  # (B, F, T)
        return self.head(features)[:, 0]


class UltraLightNet(nn.Module):
    """The ultralight heart-rate regressor: (B, T, 3, 36, 36) in [0, 1] -> (B,) beats/min.

    Each frame enters as 6 channels: the window-standardised frame and its change since the previous frame
    (averaging over time alone would discard the rhythm; the ratio of the change to the level keeps it).
    """

    def __init__(self, bpm_offset: float = 75.0, bpm_scale: float = 20.0):
        super().__init__()
        self.bpm_offset = bpm_offset
        self.bpm_scale = bpm_scale
        self.features = nn.Sequential(
            nn.Conv2d(6, 16, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3),
        )
        self.regressor = nn.Sequential(nn.Linear(32 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                       nn.Linear(32, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, length = frames.shape[:2]
        x = frames.flatten(0, 1)
        x = F.interpolate(x, size=(36, 36), mode="area") if x.shape[-2:] != (36, 36) else x
        x = standardise_window(x.view(batch, length, *x.shape[1:]))
        change = torch.diff(x, dim=1, prepend=x[:, :1])
        x = torch.cat([x, change], dim=2)
        features = self.features(x.flatten(0, 1)).view(batch, length, -1).mean(dim=1)
        return self.regressor(features)[:, 0] * self.bpm_scale + self.bpm_offset
