"""Convert face-api.js's FaceExpressionNet weights (npm ``@vladmandic/face-api`` 1.7.15) into a PyTorch state dict.

Reads ``package/model/face_expression_model-weights_manifest.json`` and ``face_expression_model.bin`` straight
out of the npm tarball (no Node, no TensorFlow), decodes them the way tfjs's ``io.decodeWeights`` does (float32
as is; uint8-quantized entries as ``q * scale + min``), maps each named tensor onto
``smartmirror.emotion.faceapi.FaceExpressionNet`` (conv filters HWIO -> OIHW, depthwise (h, w, c, 1) ->
(c, 1, h, w), fully connected (in, out) -> (out, in)) and writes ``weights/emotion_face_expression_net.pt``.
Every tensor of the manifest must be used exactly once.

Get the package (MIT; face-api.js Copyright (c) 2018 Vincent Mühler, this fork Copyright (c) Vladimir Mandic)
and run:

    cd /tmp && npm pack @vladmandic/face-api@1.7.15
    .venv/bin/python scripts/convert_face_api_weights.py /tmp/vladmandic-face-api-1.7.15.tgz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from smartmirror.emotion.catalog import create_model
from smartmirror.paths import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
MANIFEST_MEMBER = "package/model/face_expression_model-weights_manifest.json"
OUT_WEIGHTS = WEIGHTS_DIR / "emotion_face_expression_net.pt"
_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_weights(manifest: list[dict], shards: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Named float32 arrays from a tfjs weights manifest and its binary shards (tfjs ``io.decodeWeights``)."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join(shards[path] for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = tuple(spec["shape"])
            count = int(np.prod(shape)) if shape else 1
            quantization = spec.get("quantization")
            dtype = np.dtype(_DTYPES[quantization["dtype"] if quantization else spec["dtype"]])
            raw = np.frombuffer(buffer, dtype=dtype.newbyteorder("<"), count=count, offset=offset)
            offset += count * dtype.itemsize
            if quantization and quantization["dtype"] in ("uint8", "uint16"):
                values = raw.astype(np.float64) * quantization["scale"] + quantization["min"]
            else:
                values = raw
            out[spec["name"]] = values.astype(np.float32).reshape(shape)
        if offset != len(buffer):
            raise ValueError(f"manifest group uses {offset} of {len(buffer)} bytes")
    return out


def face_api_to_torch_state(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The FaceExpressionNet state dict from face-api's named tensors; raises if any tensor is left over."""
    unused = set(weights)
    state: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        unused.remove(name)
        return weights[name]

    for block in range(4):
        prefix, ours = f"dense{block}", f"blocks.{block}"
        for conv in range(4):
            source, target = f"{prefix}/conv{conv}", f"{ours}.conv{conv}"
            if block == 0 and conv == 0:
                state[f"{target}.conv.weight"] = take(f"{source}/filters").transpose(3, 2, 0, 1)  # HWIO -> OIHW
                state[f"{target}.conv.bias"] = take(f"{source}/bias")
                continue
            depthwise = take(f"{source}/depthwise_filter")  # (h, w, channels, multiplier 1)
            h, w, channels, multiplier = depthwise.shape
            assert multiplier == 1, f"{source}: depth multiplier {multiplier}"
            state[f"{target}.depthwise.weight"] = depthwise.transpose(2, 3, 0, 1).reshape(channels, 1, h, w)
            state[f"{target}.pointwise.weight"] = take(f"{source}/pointwise_filter").transpose(3, 2, 0, 1)
            state[f"{target}.pointwise.bias"] = take(f"{source}/bias")
    state["fc.weight"] = take("fc/weights").T  # matMul(x, W): (in, out) -> (out, in)
    state["fc.bias"] = take("fc/bias")
    if unused:
        raise ValueError(f"manifest tensors not mapped: {sorted(unused)}")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def read_package(tarball: Path) -> tuple[list[dict], dict[str, bytes], dict[str, str]]:
    """(manifest, shards by path, sha256 by member) from the npm tarball."""
    hashes: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        manifest_bytes = archive.extractfile(MANIFEST_MEMBER).read()
        hashes[MANIFEST_MEMBER] = sha256(manifest_bytes)
        manifest = json.loads(manifest_bytes)
        shards = {}
        folder = MANIFEST_MEMBER.rsplit("/", 1)[0]
        for group in manifest:
            for path in group["paths"]:
                data = archive.extractfile(f"{folder}/{path}").read()
                hashes[f"{folder}/{path}"] = sha256(data)
                shards[path] = data
    return manifest, shards, hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tarball", type=Path, help="vladmandic-face-api-1.7.15.tgz from `npm pack`")
    args = parser.parse_args()

    print(f"package {args.tarball.name} sha256 {sha256(args.tarball.read_bytes())}")
    manifest, shards, hashes = read_package(args.tarball)
    for member, digest in hashes.items():
        print(f"{member} sha256 {digest}")
    state = face_api_to_torch_state(decode_weights(manifest, shards))
    model = create_model("face_expression_net")
    model.load_state_dict(state, strict=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    OUT_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    OUT_WEIGHTS.write_bytes(buffer.getvalue())
    print(f"wrote {OUT_WEIGHTS.relative_to(REPO)} sha256 {sha256(OUT_WEIGHTS.read_bytes())}")
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")


if __name__ == "__main__":
    main()
