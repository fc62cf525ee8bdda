"""Export the bundled emotion ensemble (``emotion_ensemble``) to ONNX (weights/emotion_ensemble.onnx).

Usage (the exporter needs the ``onnx`` package, which the project does not depend on; a throwaway copy is
enough, numpy and protobuf come from the project venv)::

    pip install --target /tmp/onnx-export --no-deps onnx==1.17.0
    PYTHONPATH=/tmp/onnx-export .venv/bin/python scripts/export_emotion_onnx.py

The graph is the ensemble as ``EmotionPredictor`` runs it on CPU (batchnorm folded into the convolutions) for
one view: input ``faces`` (n, 3, 112, 112) float32 RGB in [0, 1], output ``logits`` (n, 7), the learned
combiner's logits over the members' log-probabilities (FER label order). The flip pass is the mean of a face's
and its mirror image's logits (the combiner is linear in the views' mean features), which
``smartmirror.emotion.onnx_model`` computes from one run on both views; so one graph gives ``flip=True`` and
``flip=False`` exactly. The mini-Xception member's antialiased 112 -> 64 bilinear resize becomes two constant
matrix products (the same linear map, read off ``F.interpolate``; the legacy exporter has no antialiased
resize). The predictor's contract and the source files' sha256 go into the graph's metadata.

The script checks the graph against the torch ensemble on random and real faces (onnxruntime, both flip
settings, 1e-5) before writing it; the export is deterministic and the script prints the file's sha256 for
weights/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from smartmirror.emotion.catalog import load_model, model_cfg  # noqa: E402
from smartmirror.emotion.ensemble import DEFAULT_COMBINER, DEFAULT_MEMBERS, EmotionEnsemble  # noqa: E402
from smartmirror.emotion.model import fuse_batchnorm  # noqa: E402
from smartmirror.emotion.onnx_model import METADATA_KEY, ONNX_FILE, ONNX_FORMAT, OnnxEmotionEnsemble  # noqa: E402
from smartmirror.emotion.spec import DEFAULT_MODEL  # noqa: E402
from smartmirror.paths import WEIGHTS_DIR  # noqa: E402

OPSET = 17
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "face_api_expression_reference.npz"


def resize_matrix(source: int, target: int) -> torch.Tensor:
    """(target, source): the antialiased bilinear resize of one axis (``F.interpolate``) as a matrix."""
    eye = torch.eye(source).view(1, 1, source, source)
    return F.interpolate(eye, size=(target, source), mode="bilinear", align_corners=False, antialias=True)[0, 0]


class ViewLogits(nn.Module):
    """The ensemble's combiner logits for one view, with each member's resize as constant matrices."""

    def __init__(self, ensemble: EmotionEnsemble):
        super().__init__()
        if not ensemble.learned:
            raise ValueError("only an ensemble with a learned combiner is exported")
        self.ensemble = ensemble
        height, width = ensemble.input_size
        for i, adapter in enumerate(ensemble.adapters):
            rows, cols = adapter["size"]
            self.register_buffer(f"rows_{i}", resize_matrix(height, rows))
            self.register_buffer(f"cols_{i}", resize_matrix(width, cols).T.contiguous())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        ensemble = self.ensemble
        features = []
        for i, (member, adapter) in enumerate(zip(ensemble.members, ensemble.adapters, strict=True)):
            x = faces
            if adapter["grey"]:
                x = (x * ensemble.grey_weights).sum(dim=1, keepdim=True)
            if tuple(x.shape[-2:]) != adapter["size"]:
                x = getattr(self, f"rows_{i}") @ x @ getattr(self, f"cols_{i}")
            if adapter["mean"] != 0.0 or adapter["std"] != 1.0:
                x = (x - adapter["mean"]) / adapter["std"]
            log_p = torch.log_softmax(member(x).float(), dim=1)
            features.append(log_p.index_select(1, getattr(ensemble, f"order_{i}")))
        return torch.cat(features, dim=1) @ ensemble.combiner_coef.T + ensemble.combiner_intercept


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contract(ensemble: EmotionEnsemble) -> dict:
    """The predictor's metadata: input contract, flip default, and what the graph was made from."""
    cfg = ensemble.cfg
    sources = [model_cfg(name).file for name in DEFAULT_MEMBERS] + [DEFAULT_COMBINER]
    return {
        "format": ONNX_FORMAT,
        "model": DEFAULT_MODEL,
        "members": list(DEFAULT_MEMBERS),
        "labels": list(cfg.labels),
        "input_size": list(cfg.input_size),
        "in_channels": cfg.in_channels,
        "mean": cfg.mean,
        "std": cfg.std,
        "face_scale": cfg.face_scale,
        "flip": bool(ensemble.flip),
        "output": "combiner logits of one view; flip: mean of the face's and its mirror image's",
        "sources_sha256": {name: sha256(WEIGHTS_DIR / name) for name in sources},
        "torch": torch.__version__,
    }


def check(path: Path, ensemble: EmotionEnsemble) -> float:
    """Largest probability difference between the graph (onnxruntime) and the torch ensemble."""
    runner = OnnxEmotionEnsemble(path)
    real = np.load(FIXTURE)["faces_rgb"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    noise = np.random.default_rng(0).random((3, 3, 112, 112), dtype=np.float32)
    worst = 0.0
    for batch in (real, real[:1], noise):
        for flip in (True, False):
            with torch.no_grad():
                expected = torch.softmax(ensemble(torch.from_numpy(batch), flip=flip), dim=1).numpy()
            worst = max(worst, float(np.abs(runner.probabilities(batch, flip) - expected).max()))
    return worst


def export(output: Path) -> str:
    import onnx

    ensemble = fuse_batchnorm(load_model(DEFAULT_MODEL)).eval()  # the copy keeps the cfg
    graph = ViewLogits(ensemble).eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the padding and resize choices follow the fixed input size (traced as constants, as intended); the
        # legacy exporter's deprecation and constant-folding notes change nothing
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(graph, (torch.zeros(2, 3, *ensemble.input_size),), buffer, input_names=["faces"],
                          output_names=["logits"], dynamic_axes={"faces": {0: "faces"}, "logits": {0: "faces"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name, model.producer_version = "smartmirror scripts/export_emotion_onnx.py", torch.__version__
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(contract(ensemble), sort_keys=True)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    output.write_bytes(data)
    worst = check(output, ensemble)
    if worst > 1e-5:
        output.unlink()
        raise RuntimeError(f"the exported graph differs from the torch ensemble by {worst:.2e}; not written")
    print(f"onnxruntime vs torch: largest probability difference {worst:.1e}")
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=WEIGHTS_DIR / ONNX_FILE)
    args = parser.parse_args()
    digest = export(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main()
