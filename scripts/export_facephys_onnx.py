"""Export the PyTorch FacePhys port (weights/rppg_facephys_rlap.pt) to ONNX (weights/rppg_facephys_rlap.onnx).

Usage (the exporter needs the ``onnx`` package, which the project does not depend on; a throwaway copy is
enough, numpy and protobuf come from the project venv)::

    pip install --target /tmp/onnx-export --no-deps onnx==1.17.0
    PYTHONPATH=/tmp/onnx-export .venv/bin/python scripts/export_facephys_onnx.py

The graph runs one chunk of any length L (1 for streaming, tens to hundreds for a clip):

- input ``frames``: (L, 36, 36, 3) uint8 RGB face crops at 30 frames/s;
- inputs ``state_00`` .. : the carried state, flattened in :func:`torch.utils._pytree.tree_flatten` order of
  ``FacePhys.init_state()``; each has the learned initial state as its initializer, so a fresh clip feeds
  ``frames`` alone;
- outputs ``pulse`` (L,) float32 and ``new_state_00`` .. (the state after the chunk, fed back as ``state_NN``).

The export is deterministic (same weights -> same bytes); the script prints the file's sha256 for
weights/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils import _pytree as pytree

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from smartmirror.vitals.neural import load_pretrained  # noqa: E402

OPSET = 17


class FlatFacePhys(nn.Module):
    """FacePhys with uint8 NHWC frames in and the state as a flat list of tensors (ONNX has no nested inputs)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        _, self.spec = pytree.tree_flatten(network.init_state())

    def forward(self, frames: torch.Tensor, *leaves: torch.Tensor):
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        pulse, state = self.network(x, pytree.tree_unflatten(list(leaves), self.spec))
        return (pulse, *pytree.tree_leaves(state))


def export(output: Path) -> str:
    import onnx
    from onnx import numpy_helper

    network = load_pretrained("facephys-rlap")
    flat = FlatFacePhys(network).eval()
    with torch.no_grad():
        leaves = [leaf.detach().clone().float() for leaf in pytree.tree_leaves(network.init_state())]
    n = len(leaves)
    inputs = ["frames"] + [f"state_{i:02d}" for i in range(n)]
    outputs = ["pulse"] + [f"new_state_{i:02d}" for i in range(n)]
    frames = torch.zeros(8, 36, 36, 3, dtype=torch.uint8)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(flat, (frames, *leaves), buffer, input_names=inputs, output_names=outputs,
                          dynamic_axes={"frames": {0: "frames"}, "pulse": {0: "frames"}}, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    known = {init.name for init in model.graph.initializer}
    for name, leaf in zip(inputs[1:], leaves, strict=True):
        if name in known:
            raise RuntimeError(f"state input {name} already has an initializer")
        model.graph.initializer.append(numpy_helper.from_array(leaf.numpy(), name))
    model.producer_name, model.producer_version = "smartmirror scripts/export_facephys_onnx.py", torch.__version__
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    output.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "weights" / "rppg_facephys_rlap.onnx")
    args = parser.parse_args()
    digest = export(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes), sha256 {digest}")


if __name__ == "__main__":
    main()
