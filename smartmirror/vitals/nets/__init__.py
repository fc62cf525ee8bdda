"""PyTorch networks for learned rPPG: ports of open-rppg's pretrained models and two trainable ones."""

from smartmirror.vitals.nets.facephys import FacePhys
from smartmirror.vitals.nets.me import MENet
from smartmirror.vitals.nets.trainable import ResNetTCN, UltraLightNet

__all__ = ["FacePhys", "MENet", "ResNetTCN", "UltraLightNet"]
