"""Convert open-rppg's Keras weights (FacePhys, ME) into PyTorch state dicts under weights/.

Usage::

    pip download --no-deps open-rppg==0.1.1 -d /tmp/wheels      # once, from PyPI
    python scripts/convert_open_rppg.py --wheel /tmp/wheels/open_rppg-0.1.1-py3-none-any.whl

Reads ``rppg/weights/*.weights.h5`` with h5py and ``rppg/weights/state.pkl`` (ME's learned initial state, a
pickle of JAX arrays) with a restricted unpickler that rebuilds plain numpy arrays and refuses anything else,
so neither Keras nor JAX is needed. Each output file holds ``{"state_dict": ..., "meta": ...}`` where meta
records the source wheel, its sha256 and the weights' licence terms as the package states them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from smartmirror.vitals.nets.facephys import FacePhys  # noqa: E402
from smartmirror.vitals.nets.me import MENet  # noqa: E402

WHEEL_VERSION = "0.1.1"
WHEEL_NAME = f"open_rppg-{WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "8283c0b54eeb53524d866436147d8112ee26f130730fb848cafc5b39d89249c6"
LICENCE = (
    "open-rppg code: MIT. Its LICENSE adds: 'pretrained models and model configurations provided in this "
    "repository are the intellectual property of their respective authors and are licensed under the terms "
    "specified by the original papers ... We do not claim ownership or rights to redistribute third-party "
    "models unless explicitly stated.' FacePhys and ME are the open-rppg author's own models (Wang et al., "
    "arXiv:2504.01774); no separate licence for their weights is stated."
)

#: output file -> (weights file in the wheel, network class, extra description)
MODELS = {
    "rppg_facephys_rlap.pt": ("FacePhys.rlap.weights.h5", FacePhys, "FacePhys trained on RLAP"),
    "rppg_me_pure.pt": ("ME.pure.weights.h5", MENet, "ME (chunk mode) trained on PURE"),
    "rppg_me_rlap.pt": ("ME.rlap.weights.h5", MENet, "ME (chunk mode) trained on RLAP"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle JAX arrays as numpy arrays; refuse every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("jax._src.array", "_reconstruct_array"):
            return _reconstruct_array
        if (module, name) in self._ALLOWED:
            import numpy.core.multiarray as multiarray

            return {"_reconstruct": multiarray._reconstruct, "ndarray": np.ndarray, "dtype": np.dtype}[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from state.pkl")


def _reconstruct_array(fun, args, arr_state, aval_state):
    array = fun(*args)
    array.__setstate__(arr_state)
    return np.asarray(array)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _dense(weights: h5py.Group, prefix: str) -> torch.Tensor:
    """Keras Dense kernel (in, out) -> nn.Linear weight (out, in)."""
    return _t(weights[prefix][()].T)


def _dense_as_conv1x1(kernel: np.ndarray) -> torch.Tensor:
    return _t(kernel.T[:, :, None, None])


def _conv2d(kernel: np.ndarray) -> torch.Tensor:
    """Keras Conv2D kernel (kh, kw, in, out) or Conv3D with a 1-frame kernel -> nn.Conv2d (out, in, kh, kw)."""
    if kernel.ndim == 5:
        kernel = kernel[0]
    return _t(kernel.transpose(3, 2, 0, 1))


def _facephys_ssm(h5: h5py.File, src: str, dst: str) -> dict[str, torch.Tensor]:
    conv = h5[f"{src}/conv1d/vars/0"][()]  # (1, k, C, 1)
    return {
        f"{dst}.in_proj.weight": _dense(h5, f"{src}/in_proj/vars/0"),
        f"{dst}.conv_weight": _t(conv[0, :, :, 0].T[:, None, :]),
        f"{dst}.conv_bias": _t(h5[f"{src}/conv1d/vars/1"][()]),
        f"{dst}.A_log": _t(h5[f"{src}/vars/0"][()]),
        f"{dst}.dt_bias": _t(h5[f"{src}/vars/1"][()]),
        f"{dst}.D": _t(h5[f"{src}/vars/2"][()][:, 0]),
        f"{dst}.init_conv_state": _t(h5[f"{src}/vars/3"][()][0]),
        f"{dst}.init_ssm_state": _t(h5[f"{src}/vars/4"][()][0, 0]),
        f"{dst}.norm_weight": _t(h5[f"{src}/norm/vars/0"][()]),
        f"{dst}.out_proj.weight": _dense(h5, f"{src}/out_proj/vars/0"),
    }


def _me_mamba(h5: h5py.File, src: str, dst: str, init_state: list) -> dict[str, torch.Tensor]:
    ssm_state, conv_state = init_state
    return {
        f"{dst}.in_proj.weight": _dense(h5, f"{src}/in_proj/vars/0"),
        f"{dst}.conv_weight": _t(h5[f"{src}/conv1d/vars/0"][()].transpose(2, 1, 0)),
        f"{dst}.conv_bias": _t(h5[f"{src}/conv1d/vars/1"][()]),
        f"{dst}.dt_bias": _t(h5[f"{src}/vars/0"][()]),
        f"{dst}.A_log": _t(h5[f"{src}/vars/1"][()]),
        f"{dst}.D": _t(h5[f"{src}/vars/2"][()][:, 0]),
        f"{dst}.norm_weight": _t(h5[f"{src}/norm/vars/0"][()]),
        f"{dst}.out_proj.weight": _dense(h5, f"{src}/out_proj/vars/0"),
        f"{dst}.init_ssm_state": _t(np.asarray(ssm_state, dtype=np.float32)[0, 0]),
        f"{dst}.init_conv_state": _t(np.asarray(conv_state, dtype=np.float32)[0]),
    }


def _keras_name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def _convert_block_ends(h5: h5py.File, out: dict[str, torch.Tensor], i: int) -> str:
    """Block i's 1x1 input projection and strided downsampling (the same in FacePhys and ME); its h5 path."""
    block = f"layers/sequential/layers/{_keras_name('ssc_block', i)}"
    out[f"blocks.{i}.in_proj.weight"] = _dense_as_conv1x1(h5[f"{block}/in_proj/vars/0"][()])
    out[f"blocks.{i}.downsample.weight"] = _conv2d(h5[f"{block}/ds/vars/0"][()])
    out[f"blocks.{i}.downsample.bias"] = _t(h5[f"{block}/ds/vars/1"][()])
    return block


def convert_facephys(h5: h5py.File) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i in range(4):
        block = _convert_block_ends(h5, out, i)
        for j in range(2):
            src = f"{block}/ssc/layers/{_keras_name('ss_conv', j)}"
            dst = f"blocks.{i}.layers.{j}"
            tn = [h5[f"{src}/tn/vars/{k}"][()] for k in range(5)]
            out[f"{dst}.norm.lbd"], out[f"{dst}.norm.gamma"], out[f"{dst}.norm.beta"] = map(_t, tn[:3])
            out[f"{dst}.norm.init_mean"] = _t(tn[3][0, 0].transpose(2, 0, 1))
            out[f"{dst}.norm.init_log_var"] = _t(tn[4][0, 0].transpose(2, 0, 1))
            out[f"{dst}.conv1.weight"] = _conv2d(h5[f"{src}/conv1/layers/conv2d/vars/0"][()])
            out[f"{dst}.conv1.bias"] = _t(h5[f"{src}/conv1/layers/conv2d/vars/1"][()])
            out[f"{dst}.conv1_dense.weight"] = _dense_as_conv1x1(h5[f"{src}/conv1/layers/dense/vars/0"][()])
            out[f"{dst}.conv1_dense.bias"] = _t(h5[f"{src}/conv1/layers/dense/vars/1"][()])
            out[f"{dst}.conv2.weight"] = _conv2d(h5[f"{src}/conv2/vars/0"][()])
            out[f"{dst}.conv2.bias"] = _t(h5[f"{src}/conv2/vars/1"][()])
            out[f"{dst}.proj.weight"] = _dense(h5, f"{src}/proj/vars/0")
            out.update(_facephys_ssm(h5, f"{src}/ssm", f"{dst}.ssm"))
    out["out_proj.weight"] = _dense(h5, "layers/sequential_1/layers/dense/vars/0")
    for k in range(2):
        out.update(_facephys_ssm(h5, f"head/layers/{_keras_name('ss_mr_ppg', k)}", f"head.{k}"))
    out["readout.weight"] = _dense(h5, "head/layers/dense/vars/0")
    out["readout.bias"] = _t(h5["head/layers/dense/vars/1"][()])
    return out


def convert_me(h5: h5py.File, init_state: list) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i in range(4):
        block = _convert_block_ends(h5, out, i)
        for j in range(2):
            src = f"{block}/ssc/layers/{_keras_name('ss_conv', j)}"
            dst = f"blocks.{i}.layers.{j}"
            out[f"{dst}.conv1.weight"] = _conv2d(h5[f"{src}/conv1/layers/conv3d/vars/0"][()])
            out[f"{dst}.conv1.bias"] = _t(h5[f"{src}/conv1/layers/conv3d/vars/1"][()])
            out[f"{dst}.conv1_dense.weight"] = _dense_as_conv1x1(h5[f"{src}/conv1/layers/dense/vars/0"][()])
            out[f"{dst}.conv1_dense.bias"] = _t(h5[f"{src}/conv1/layers/dense/vars/1"][()])
            out[f"{dst}.conv2.weight"] = _conv2d(h5[f"{src}/conv2/vars/0"][()])
            out[f"{dst}.conv2.bias"] = _t(h5[f"{src}/conv2/vars/1"][()])
            out[f"{dst}.proj.weight"] = _dense(h5, f"{src}/proj/vars/0")
            out.update(_me_mamba(h5, f"{src}/mamba", f"{dst}.mamba", init_state[i][j]["mamba"]))
    out["out_proj.weight"] = _dense(h5, "layers/sequential_1/layers/dense/vars/0")
    for k in range(2):
        out.update(_me_mamba(h5, f"head/layers/{_keras_name('mamba2', k)}", f"head.{k}", init_state[4 + k]))
    out["readout.weight"] = _dense(h5, "head/layers/dense/vars/0")
    out["readout.bias"] = _t(h5["head/layers/dense/vars/1"][()])
    return out


def convert(wheel: Path, out_dir: Path) -> list[Path]:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256} (open-rppg {WHEEL_VERSION})")
    written = []
    with zipfile.ZipFile(wheel) as archive:
        init_state = _NumpyOnlyUnpickler(io.BytesIO(archive.read("rppg/weights/state.pkl"))).load()
        for out_name, (h5_name, network_cls, description) in MODELS.items():
            with h5py.File(io.BytesIO(archive.read(f"rppg/weights/{h5_name}")), "r") as h5:
                state_dict = convert_facephys(h5) if network_cls is FacePhys else convert_me(h5, init_state)
            network = network_cls()
            expected = set(network.state_dict())
            missing, extra = expected - set(state_dict), set(state_dict) - expected
            if missing or extra:
                raise SystemExit(f"{out_name}: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
            network.load_state_dict(state_dict)  # shape check
            meta = {
                "source": f"open-rppg {WHEEL_VERSION} ({WHEEL_NAME}), rppg/weights/{h5_name}"
                + (" + rppg/weights/state.pkl" if network_cls is MENet else ""),
                "wheel_sha256": WHEEL_SHA256,
                "licence": LICENCE,
                "description": description,
                "producer": "scripts/convert_open_rppg.py",
            }
            path = out_dir / out_name
            torch.save({"state_dict": state_dict, "meta": meta}, path)
            written.append(path)
            print(f"{path}  sha256={hashlib.sha256(path.read_bytes()).hexdigest()}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help=f"path to {WHEEL_NAME}")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "weights")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    convert(args.wheel, args.out)


if __name__ == "__main__":
    main()
