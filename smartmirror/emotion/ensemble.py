"""An ensemble of registered emotion models: mean of their class probabilities, with horizontal-flip TTA.

The bundled default, ``emotion_ensemble``, averages the FER2013 mini-Xception (64x64 grey) and face-api.js's
FaceExpressionNet (112x112 RGB) over the face and its mirror image. Measured on public copies
(``benchmarks/emotion_accuracy.py``; figures in README "Emotion"), it beats either member on CK+'s posed faces
and matches the stronger member on FER2013.

The ensemble takes the members' widest input (112x112 RGB in [0, 1]) and adapts it to each member inside the
network (grey by OpenCV's BT.601 weights, antialiased resize, the member's normalisation); member outputs are
matched to the ensemble's classes by name (face-api's "fearful" is "fear", ...). ``forward`` returns the log of
the mean probabilities, so a softmax of the output gives the mean itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.emotion.labels import FER_LABELS
from smartmirror.emotion.model import ModelCfg, create_model, register_model

#: Members of the bundled ensemble, by registered name.
DEFAULT_MEMBERS: tuple[str, ...] = ("mini_xception_fer2013", "face_expression_net")

#: OpenCV's RGB -> grey weights (ITU-R BT.601), as ``cv2.COLOR_RGB2GRAY``.
_GREY_WEIGHTS = (0.299, 0.587, 0.114)


class EmotionEnsemble(nn.Module):
    """Mean class probabilities of several emotion models, optionally over the face and its mirror image.

    Parameters
    ----------
    members : sequence of nn.Module
        Models with a ``cfg`` (:class:`~smartmirror.emotion.model.ModelCfg`); each must name every class of
        ``labels`` among its own labels.
    labels : tuple of str
        The ensemble's classes, in output order.
    input_size : tuple of int
        (height, width) of the ensemble's RGB input.
    flip : bool
        Also run the mirror image and average (test-time augmentation).
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        labels: tuple[str, ...] = FER_LABELS,
        input_size: tuple[int, int] = (112, 112),
        flip: bool = True,
    ):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.flip = flip
        self.input_size = tuple(input_size)
        self.adapters: list[dict[str, Any]] = []
        for i, member in enumerate(members):
            cfg: ModelCfg = member.cfg
            missing = [label for label in labels if label not in cfg.labels]
            if missing:
                raise ValueError(f"ensemble member {getattr(member, 'model_name', i)!r} lacks classes {missing}")
            self.register_buffer(
                f"order_{i}", torch.tensor([cfg.labels.index(label) for label in labels]), persistent=False
            )
            self.adapters.append(
                {"grey": cfg.in_channels == 1, "size": tuple(cfg.input_size), "mean": cfg.mean, "std": cfg.std}
            )
        self.register_buffer("grey_weights", torch.tensor(_GREY_WEIGHTS).view(1, 3, 1, 1), persistent=False)

    def _member_input(self, x: torch.Tensor, adapter: dict[str, Any]) -> torch.Tensor:
        if adapter["grey"]:
            x = (x * self.grey_weights).sum(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != adapter["size"]:
            x = F.interpolate(x, size=adapter["size"], mode="bilinear", align_corners=False, antialias=True)
        if adapter["mean"] != 0.0 or adapter["std"] != 1.0:
            x = (x - adapter["mean"]) / adapter["std"]
        return x

    def forward(self, x: torch.Tensor, flip: bool | None = None) -> torch.Tensor:
        """RGB (n, 3, h, w) in [0, 1] -> log of the mean probabilities (n, len(labels)).

        ``flip`` overrides the ensemble's own setting for this call (the live analyzer alternates the mirror image
        over frames instead, see ``EmotionAnalyzer``).
        """
        n = x.shape[0]
        flip = self.flip if flip is None else flip
        if flip:
            x = torch.cat([x, x.flip(-1)])
        total = None
        for i, (member, adapter) in enumerate(zip(self.members, self.adapters, strict=True)):
            probabilities = torch.softmax(member(self._member_input(x, adapter)).float(), dim=1)
            probabilities = probabilities.index_select(1, getattr(self, f"order_{i}"))
            total = probabilities if total is None else total + probabilities
        total = total / len(self.members)
        if flip:
            total = 0.5 * (total[:n] + total[n:])
        return torch.log(total.clamp_min(1e-12))


@register_model(
    ModelCfg(file=None, input_size=(112, 112), in_channels=3, mean=0.0, std=1.0, labels=FER_LABELS),
    composite=True,
)
def emotion_ensemble(
    pretrained: bool = False, members: Sequence[str] = DEFAULT_MEMBERS, flip: bool = True
) -> EmotionEnsemble:
    """Mini-Xception (FER2013) + face-api.js FaceExpressionNet, probabilities averaged, with flip TTA."""
    return EmotionEnsemble([create_model(name, pretrained=pretrained) for name in members], flip=flip)
