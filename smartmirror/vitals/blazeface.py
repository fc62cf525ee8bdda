"""open-rppg 0.1.1's face detector: BlazeFace short-range in onnxruntime with open-rppg's own decoding.

The learned pulse networks were trained and are run by open-rppg on crops around this detector's box, and the box
decides their answer on real video (:mod:`smartmirror.vitals.face_crops`). MediaPipe's BlazeFace graph runs the
same network but decodes it differently (its letterbox resampling and weighted non-maximum suppression): its box
sat 1-3 % of the face lower and to the right of open-rppg's, enough to move FacePhys's pulse (correlation 0.84
with open-rppg's on UBFC subject 11). This module repeats open-rppg's ``FaceDetector`` step by step:

- the RGB frame is letterboxed into 128 x 128 (``cv2.resize``, bilinear, to ``int(side * scale)``, centred on
  black), scaled to [-1, 1];
- the 896 anchors' scores pass a sigmoid; open-rppg's non-maximum suppression sorts a (k, 1) score array along
  its last axis, so it keeps the *first* anchor above the threshold in anchor order (not the best-scoring one);
  that anchor's box is the one returned, and so it is here;
- the box ``(cx +- 0.45 w, cy - 0.6 h .. cy + 0.5 h)`` is mapped back out of the letterbox and rounded.

The graph is open-rppg's ``rppg/weights/blaze_face.onnx`` (MediaPipe's BlazeFace short-range, Apache-2.0),
committed unchanged as ``weights/blazeface_short_range.onnx``. It costs about 1 ms of CPU per call (one
onnxruntime thread, no spinning), against about 2.4 ms for MediaPipe's graph on a 640 x 480 frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from smartmirror.paths import weights_path

#: The detector graph in weights/ (open-rppg 0.1.1's ``blaze_face.onnx``).
BLAZEFACE_FILE = "blazeface_short_range.onnx"
INPUT_SIZE = 128
SCORE_THRESHOLD = 0.5  # open-rppg's


def short_range_anchors(input_size: int = INPUT_SIZE) -> np.ndarray:
    """Anchor centres (896, 2) as (x, y) in [0, 1]: strides 8, 16, 16, 16, two anchors per cell (open-rppg's)."""
    anchors = []
    for stride in (8, 16, 16, 16):
        cells = input_size // stride
        y, x = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(x.ravel() + 0.5) / cells, (y.ravel() + 0.5) / cells], axis=1)
        anchors.append(np.repeat(centres, 2, axis=0))
    return np.concatenate(anchors).astype(np.float32)


class BlazeFaceDetector:
    """open-rppg's BlazeFace short-range detector (:meth:`box`); one onnxruntime thread, no spinning."""

    def __init__(self, path: str | Path | None = None, score_threshold: float = SCORE_THRESHOLD):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = weights_path(BLAZEFACE_FILE) if path is None else path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]  # regressors (1, 896, 16), scores
        self.anchors = short_range_anchors()
        self.score_threshold = score_threshold

    def box(self, image_bgr: np.ndarray) -> tuple[int, int, int, int] | None:
        """open-rppg's face box ``(x0, y0, x1, y1)`` in pixels (may reach outside the frame), None without a face.

        ``image_bgr``: (h, w, 3) uint8 BGR frame.
        """
        height, width = image_bgr.shape[:2]
        scale = min(INPUT_SIZE / width, INPUT_SIZE / height)
        new_w, new_h = int(width * scale), int(height * scale)
        # resizing works per channel, so resizing BGR and then swapping to RGB equals open-rppg's RGB resize
        small = cv2.cvtColor(cv2.resize(image_bgr, (new_w, new_h)), cv2.COLOR_BGR2RGB)
        padded = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        x_offset, y_offset = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
        padded[y_offset:y_offset + new_h, x_offset:x_offset + new_w] = small
        tensor = ((padded.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5))[None]
        regressors, logits = self.session.run(self.output_names, {self.input_name: tensor})
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0], -80, 80)))
        valid = np.flatnonzero(scores > self.score_threshold)
        if len(valid) == 0:
            return None
        first = valid[0]  # open-rppg's suppression keeps the first anchor above the threshold (see module doc)
        raw, anchor = regressors[0, first].astype(np.float32), self.anchors[first]
        size = np.float32(INPUT_SIZE)
        cx, cy = raw[0] / size + anchor[0], raw[1] / size + anchor[1]  # float32, as open-rppg's numpy 2 computes
        w, h = raw[2] / size, raw[3] / size
        relative = np.array([cx - w * np.float32(0.45), cy - h * np.float32(0.6), cx + w * np.float32(0.45),
                             cy + h * np.float32(0.5)], dtype=np.float64)
        offsets = np.array([x_offset, y_offset, x_offset, y_offset], dtype=np.float64)
        x0, y0, x1, y1 = (int(v) for v in np.round((relative * INPUT_SIZE - offsets) / scale))
        return x0, y0, x1, y1

    def close(self) -> None:
        """Drop the onnxruntime session."""
        self.session = None
