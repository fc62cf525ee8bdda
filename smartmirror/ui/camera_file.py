"""Video files for Chromium's fake camera (``--use-file-for-fake-video-capture``), for tests and benchmarks.

Chromium plays a YUV4MPEG2 file frame by frame, over and over. A clip whose last frame does not join its first
makes a jump in the face's position and in the pulse's phase at every loop; :func:`ping_pong` plays a clip
forward then backward so the loop joins itself (the pulse's rate is the same backwards).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import numpy as np


def ping_pong(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``frames`` forward, then backward without repeating either end (a loop with no seam)."""
    frames = list(frames)
    return frames + frames[-2:0:-1]


def write_y4m(path: str | Path, images_bgr: Iterable[np.ndarray], *, fps: int) -> int:
    """Write BGR uint8 images as YUV4MPEG2 (I420, BT.601 studio range, as a camera sends it).

    Returns the number of frames written. All images must have the size of the first.
    """
    count = 0
    size = None
    with open(path, "wb") as out:
        for image in images_bgr:
            height, width = image.shape[:2]
            if size is None:
                size = (width, height)
                out.write(f"YUV4MPEG2 W{width} H{height} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
            elif (width, height) != size:
                raise ValueError(f"frame {count} is {width}x{height}, the clip is {size[0]}x{size[1]}")
            out.write(b"FRAME\n")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24").reformat(
                format="yuv420p")
            for plane in frame.planes:
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                out.write(rows[:, : plane.width].tobytes())
            count += 1
    return count


def read_y4m(path: str | Path) -> tuple[list[np.ndarray], float]:
    """The BGR frames of a YUV4MPEG2 file (as the fake camera hands them on) and its frames per second."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)], fps
