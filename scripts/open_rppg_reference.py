"""Make the parity fixtures of the open-rppg ports (tests/fixtures/open_rppg_*.npz).

Two steps, two Python environments (the project never depends on the second one):

1. In the project venv, the inputs: 36 x 36 RGB face crops of a synthetic-pulse clip of the astronaut portrait
   (smartmirror.synth + FaceMesh + smartmirror.vitals.face_crops.crop_faces) and a deterministic pattern clip::

       .venv/bin/python scripts/open_rppg_reference.py inputs

2. In a throwaway venv with the original package (python3.11 -m venv /tmp/openrppg-venv;
   /tmp/openrppg-venv/bin/pip install "setuptools<81" open-rppg==0.1.1), the reference outputs of the original
   Keras/JAX models, run exactly as ``rppg.Model`` runs them (FacePhys frame by frame through its jitted
   ``step``; ME in 160-frame chunks with its state, the last chunk padded), once with the package's own
   mixed-float16 policy ("shipped") and once with every layer in float32 ("float32")::

       /tmp/openrppg-venv/bin/python scripts/open_rppg_reference.py reference

3. In the same throwaway venv, the original end to end on a real recording (the committed PhysRecorder clip,
   MIT): ``rppg.Model("FacePhys.rlap").process_video`` with its own decoding, BlazeFace boxes, Kalman filter and
   crops; saved are its raw pulse at 30 frames/s, the crop box of every frame and its heart rate, no pixels
   (tests/fixtures/open_rppg_physrecorder_10s.npz). Its face detection runs synchronously here: open-rppg decides
   whether a frame is a detection frame (every 5th) by reading a counter when its worker thread gets to the frame,
   by which time the decoding thread has usually moved on, so which frames are measured (and so the boxes, the
   pulse and the heart rate: 123.9 / 125.8 / 125.3 bpm in three runs on UBFC subject 11) changes from run to run.
   Run synchronously it measures frames 0, 5, 10, ..., the rule it means and the one smartmirror follows::

       /tmp/openrppg-venv/bin/python scripts/open_rppg_reference.py real
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
INPUTS = FIXTURES / "open_rppg_inputs.npz"
N_FRAMES = 192  # one full 160-frame ME chunk plus a padded partial one
REAL_CLIP = FIXTURES.parent / "data" / "physrecorder_webcam_10s.mp4"
REAL_REFERENCE = FIXTURES / "open_rppg_physrecorder_10s.npz"
MODELS = {"facephys_rlap": "FacePhys.rlap", "me_rlap": "ME-chunk.rlap", "me_pure": "ME-chunk.pure"}


def pattern_clip(n_frames: int = N_FRAMES) -> np.ndarray:
    """A deterministic (n, 36, 36, 3) uint8 clip: smooth texture, a 78 bpm colour pulse, pseudo-noise."""
    t = np.arange(n_frames)[:, None, None, None] / 30.0
    i = np.arange(36)[None, :, None, None]
    j = np.arange(36)[None, None, :, None]
    c = np.arange(3)[None, None, None, :]
    base = 128 + 50 * np.sin(0.31 * i + 0.7 * c) * np.cos(0.23 * j - 0.4 * c)
    pulse = 4.0 * np.sin(2 * np.pi * 1.3 * t + 0.05 * i) * (1.0 + 0.3 * (c == 1))
    texture = 6.0 * np.sin(1.7 * i * j + 2.3 * c + 11.0 * t)
    return np.clip(np.round(base + pulse + texture), 0, 255).astype(np.uint8)


def pattern_sha1() -> str:
    """Checksum of :func:`pattern_clip` (the tests rebuild the clip rather than store it)."""
    import hashlib

    return hashlib.sha1(pattern_clip().tobytes()).hexdigest()


def make_inputs() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from smartmirror.face import FaceTracker
    from smartmirror.synth import SynthConfig, generate_frames
    from smartmirror.vitals.face_crops import crop_faces

    config = SynthConfig(duration_s=N_FRAMES / 30.0, width=320, height=240, heart_rate_bpm=84.0,
                         pulse_amplitude=0.02, head_motion_px=1.0, seed=7)
    packets, truth = generate_frames(config)
    packets = list(packets)
    with FaceTracker() as tracker:
        faces = [tracker.process(p.image) for p in packets]
    crops, has_face = crop_faces(packets, faces)
    assert has_face.all(), "the synthetic face must be found in every frame"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(INPUTS, face=crops, ppg=np.asarray(truth.ppg, np.float32),
                        heart_rate_bpm=np.float64(truth.heart_rate_bpm), pattern_sha1=np.array(pattern_sha1()))
    print(f"wrote {INPUTS} ({INPUTS.stat().st_size} bytes)")


def _run_original(model_name: str, frames: np.ndarray, float32: bool) -> np.ndarray:
    import keras
    import rppg.models as original  # sets KERAS_BACKEND=jax before Keras loads

    loader = {
        "FacePhys.rlap": original.load_FacePhys_rlap,
        "ME-chunk.rlap": original.load_ME_chunk_rlap,
        "ME-chunk.pure": original.load_ME_chunk_pure,
    }[model_name]
    if not float32:
        call, state, meta = loader()
    else:  # the same calls as the loaders above, with every layer switched to float32 after loading
        import jax

        weights = original.pkg_resources.resource_filename("rppg", {
            "FacePhys.rlap": "weights/FacePhys.rlap.weights.h5",
            "ME-chunk.rlap": "weights/ME.rlap.weights.h5",
            "ME-chunk.pure": "weights/ME.pure.weights.h5",
        }[model_name])
        facephys = model_name.startswith("FacePhys")
        keras.mixed_precision.set_global_policy("float32")  # also for layers made inside calls
        model, state = (original.load_FacePhys if facephys else original.load_ME)(weights)
        for layer in model._flatten_layers(include_self=True, recursive=True):
            layer.dtype_policy = keras.DTypePolicy("float32")

        @jax.jit
        def call(x, state):
            step = model.step if facephys else model.step_chunk
            y, state = step(x[None] / 255.0, state)
            return {"bvp": y[0]}, state

        meta = {"input": (1 if facephys else 160, 36, 36, 3)}
    length = meta["input"][0]
    out = []
    for start in range(0, len(frames), length):
        chunk = frames[start:start + length]
        valid = len(chunk)
        if valid < length:  # rppg.Model: pad with the last frame, state not kept
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], length - valid, axis=0)])
            result, _ = call(chunk, state)
        else:
            result, state = call(chunk, state)
        out.append(np.asarray(result["bvp"], dtype=np.float64)[:valid])
    return np.concatenate(out)


def make_reference(which: str, precision: str) -> None:
    inputs = dict(np.load(INPUTS))
    assert str(inputs["pattern_sha1"]) == pattern_sha1()
    inputs["pattern"] = pattern_clip()
    name = MODELS[which]
    float32 = precision == "float32"
    path = FIXTURES / f"open_rppg_{which}.npz"
    results = dict(np.load(path)) if path.exists() else {}
    for clip in ("face", "pattern"):
        results[f"{precision}_{clip}"] = _run_original(name, inputs[clip], float32).astype(np.float32)
        print(which, precision, clip, results[f"{precision}_{clip}"][:4])
    import importlib.metadata as md

    results["package"] = np.array(f"open-rppg {md.version('open-rppg')}, jax {md.version('jax')}, "
                                  f"keras {md.version('keras')}")
    np.savez_compressed(path, **results)


class _SynchronousPool:
    """A stand-in for open-rppg's face-detection thread pool that runs each task when it is submitted."""

    def submit(self, task):
        from concurrent.futures import Future

        done = Future()
        done.set_result(task())
        return done

    def shutdown(self, *args, **kwargs) -> None:
        pass


def _synchronous_face_detection(model) -> None:
    """Make ``model`` (an ``rppg.Model``) detect faces on frames 0, 5, 10, ... every run (see the module doc)."""
    enter = type(model).__enter__

    def synchronous_enter(self):
        entered = enter(self)
        self.face_detection_pool.shutdown()
        self.face_detection_pool = _SynchronousPool()
        return entered

    model.__class__ = type("SynchronousModel", (type(model),), {"__enter__": synchronous_enter})


def make_real_reference() -> None:
    import importlib.metadata as md

    import rppg

    model = rppg.Model("FacePhys.rlap")
    _synchronous_face_detection(model)
    boxes = []
    feed = model.update_face_resized

    def record(face_img, ts=None, hasface=True):  # the box each frame was cropped with ((y0, y1), (x0, x1))
        boxes.append(np.asarray(model.box, dtype=np.int32).ravel() if model.box is not None else np.full(4, -1))
        return feed(face_img, ts=ts, hasface=hasface)

    model.update_face_resized = record
    result = model.process_video(str(REAL_CLIP))
    raw, times = model.bvp(raw=True)
    np.savez_compressed(REAL_REFERENCE, raw_bvp=np.asarray(raw, np.float32), times=np.asarray(times, np.float32),
                        boxes_y0y1x0x1=np.stack(boxes).astype(np.int16), heart_rate_bpm=np.float64(result["hr"]),
                        package=np.array(f"open-rppg {md.version('open-rppg')}, jax {md.version('jax')}"))
    print(f"wrote {REAL_REFERENCE}: {len(raw)} samples, heart rate {result['hr']:.1f} bpm")


if __name__ == "__main__":
    if sys.argv[1:] == ["inputs"]:
        make_inputs()
    elif sys.argv[1:] == ["real"]:
        make_real_reference()
    elif sys.argv[1:2] == ["reference"] and len(sys.argv) <= 3:
        import subprocess

        for model in sys.argv[2:] or MODELS:  # one process per model and precision: Keras's global policy and caches
            for precision in ("shipped", "float32"):
                subprocess.run([sys.executable, __file__, "reference", model, precision], check=True)
    elif sys.argv[1:2] == ["reference"]:
        make_reference(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
