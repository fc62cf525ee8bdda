"""An ensemble of registered emotion models with horizontal-flip TTA: a learned combiner or the mean probability.

The bundled default, ``emotion_ensemble``, runs the FER2013 mini-Xception (64x64 grey) and face-api.js's
FaceExpressionNet (112x112 RGB) on the face and its mirror image, averages each member's log-probabilities over
the two views and maps those 14 numbers to the 7 classes with a multinomial logistic regression (the *combiner*,
``weights/emotion_ensemble_combiner.json``, fitted by ``scripts/fit_emotion_combiner.py`` on FER2013's PublicTest
split only). Measured on public copies (``benchmarks/emotion_accuracy.py``; figures in README "Emotion") it beats
the plain mean of the members' probabilities on FER2013 PrivateTest and keeps CK+ above 0.85. ``combiner="mean"``
gives the plain mean (the ensemble of any other set of members uses it too).

The ensemble takes the members' widest input (112x112 RGB in [0, 1]) and adapts it to each member inside the
network (grey by OpenCV's BT.601 weights, antialiased resize, the member's normalisation); member outputs are
matched to the ensemble's classes by name (face-api's "fearful" is "fear", ...). ``forward`` returns
log-probabilities (the combiner's log-softmax, or the log of the mean probabilities), so a softmax of the output
gives the ensemble's probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from smartmirror.emotion import faceapi  # noqa: F401 - registers face_expression_net, a member
from smartmirror.emotion.labels import FER_LABELS
from smartmirror.emotion.model import ModelCfg, build_model, register_model
from smartmirror.paths import WEIGHTS_DIR

#: Members of the bundled ensemble, by registered name.
DEFAULT_MEMBERS: tuple[str, ...] = ("mini_xception_fer2013", "face_expression_net")

#: The bundled combiner of DEFAULT_MEMBERS (weights/, made by scripts/fit_emotion_combiner.py).
DEFAULT_COMBINER = "emotion_ensemble_combiner.json"

#: Format tag of combiner files.
COMBINER_FORMAT = "smartmirror-emotion-combiner-v1"


def load_combiner(
    path: str | Path, members: Sequence[str], labels: tuple[str, ...] = FER_LABELS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(coef (classes, members * classes), intercept (classes,)) from a combiner JSON written by the fit script.

    The features are the members' log-probabilities (each in ``labels`` order, members in ``members`` order,
    averaged over the flip views); the file must name exactly these members and labels.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, another format, or members/labels/shapes that do not match.
    """
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = WEIGHTS_DIR / path
    if not path.is_file():
        raise FileNotFoundError(f"emotion combiner missing: {path} (see weights/README.md)")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable emotion combiner: {exc}") from None
    if not isinstance(spec, dict) or spec.get("format") != COMBINER_FORMAT:
        raise ValueError(f"{path} is not an emotion combiner (format {COMBINER_FORMAT!r})")
    if tuple(spec.get("members", ())) != tuple(members) or tuple(spec.get("labels", ())) != tuple(labels):
        raise ValueError(
            f"combiner {path.name} is for members {spec.get('members')} and labels {spec.get('labels')}, "
            f"not {list(members)} and {list(labels)}"
        )
    coef = torch.tensor(spec["coef"], dtype=torch.float32)
    intercept = torch.tensor(spec["intercept"], dtype=torch.float32)
    if coef.shape != (len(labels), len(members) * len(labels)) or intercept.shape != (len(labels),):
        raise ValueError(f"combiner {path.name}: coef {tuple(coef.shape)}, intercept {tuple(intercept.shape)}")
    if not (torch.isfinite(coef).all() and torch.isfinite(intercept).all()):
        raise ValueError(f"combiner {path.name} holds non-finite numbers")
    return coef, intercept

#: OpenCV's RGB -> grey weights (ITU-R BT.601), as ``cv2.COLOR_RGB2GRAY``.
_GREY_WEIGHTS = (0.299, 0.587, 0.114)


class EmotionEnsemble(nn.Module):
    """Several emotion models combined, optionally over the face and its mirror image.

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
    combiner : (coef, intercept) or None
        A multinomial logistic regression over :meth:`member_log_probabilities` (see :func:`load_combiner`):
        logits ``features @ coef.T + intercept``. None: the mean of the members' probabilities (over the views).
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        labels: tuple[str, ...] = FER_LABELS,
        input_size: tuple[int, int] = (112, 112),
        flip: bool = True,
        combiner: tuple[torch.Tensor, torch.Tensor] | None = None,
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
        self.learned = combiner is not None
        if combiner is not None:
            coef, intercept = combiner
            if coef.shape != (len(labels), len(members) * len(labels)) or intercept.shape != (len(labels),):
                raise ValueError(f"combiner shapes {tuple(coef.shape)}, {tuple(intercept.shape)} do not fit")
            self.register_buffer("combiner_coef", coef.float().clone(), persistent=False)
            self.register_buffer("combiner_intercept", intercept.float().clone(), persistent=False)

    def _member_input(self, x: torch.Tensor, adapter: dict[str, Any]) -> torch.Tensor:
        if adapter["grey"]:
            x = (x * self.grey_weights).sum(dim=1, keepdim=True)
        if tuple(x.shape[-2:]) != adapter["size"]:
            x = F.interpolate(x, size=adapter["size"], mode="bilinear", align_corners=False, antialias=True)
        if adapter["mean"] != 0.0 or adapter["std"] != 1.0:
            x = (x - adapter["mean"]) / adapter["std"]
        return x

    def _member_log_probabilities(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, (member, adapter) in enumerate(zip(self.members, self.adapters, strict=True)):
            log_p = torch.log_softmax(member(self._member_input(x, adapter)).float(), dim=1)
            out.append(log_p.index_select(1, getattr(self, f"order_{i}")))
        return out

    def member_log_probabilities(self, x: torch.Tensor, flip: bool | None = None) -> torch.Tensor:
        """RGB (n, 3, h, w) in [0, 1] -> the combiner's features (n, members * classes).

        Each member's log-probabilities in the ensemble's label order, members side by side, averaged over the
        face and its mirror image when flipping.
        """
        n = x.shape[0]
        flip = self.flip if flip is None else flip
        if flip:
            x = torch.cat([x, x.flip(-1)])
        features = torch.cat(self._member_log_probabilities(x), dim=1)
        return 0.5 * (features[:n] + features[n:]) if flip else features

    def forward(self, x: torch.Tensor, flip: bool | None = None) -> torch.Tensor:
        """RGB (n, 3, h, w) in [0, 1] -> log-probabilities (n, len(labels)).

        ``flip`` overrides the ensemble's own setting for this call (the live analyzer alternates the mirror image
        over frames instead, see ``EmotionAnalyzer``). With a combiner the views' log-probabilities are averaged
        before it (so its logits are the mean of the views' logits); without one, the probabilities are.
        """
        if self.learned:
            features = self.member_log_probabilities(x, flip)
            return torch.log_softmax(features @ self.combiner_coef.T + self.combiner_intercept, dim=1)
        n = x.shape[0]
        flip = self.flip if flip is None else flip
        if flip:
            x = torch.cat([x, x.flip(-1)])
        total = torch.stack([log_p.exp() for log_p in self._member_log_probabilities(x)]).mean(dim=0)
        if flip:
            total = 0.5 * (total[:n] + total[n:])
        return torch.log(total.clamp_min(1e-12))


@register_model(
    ModelCfg(file=None, input_size=(112, 112), in_channels=3, mean=0.0, std=1.0, labels=FER_LABELS),
    composite=True,
)
def emotion_ensemble(
    pretrained: bool = False, members: Sequence[str] = DEFAULT_MEMBERS, flip: bool = True, combiner: str = "auto"
) -> EmotionEnsemble:
    """Mini-Xception (FER2013) + face-api.js FaceExpressionNet with flip TTA, joined by the bundled combiner.

    ``combiner``: "auto" (the bundled combiner for the default members, else the mean), "mean" (mean of the
    members' probabilities), or a combiner JSON (a path, or a file name under ``weights/``).
    """
    members = tuple(members)
    if combiner == "auto":
        combiner = DEFAULT_COMBINER if members == DEFAULT_MEMBERS else "mean"
    weights = None if combiner == "mean" else load_combiner(combiner, members)
    return EmotionEnsemble([build_model(name, pretrained=pretrained) for name in members], flip=flip, combiner=weights)
