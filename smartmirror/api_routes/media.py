"""Decoding what clients send: base64 images (size-checked before decoding) and video uploads (probed cheaply)."""

from __future__ import annotations

import base64
import binascii
import io
import re
from pathlib import Path

import cv2
import numpy as np

from smartmirror.api_routes.errors import ApiError
from smartmirror.frames import VideoError

_BASE64_JUNK = re.compile(r"\s+")


def decode_base64(data: str) -> bytes:
    """Bytes of a base64 string (standard or URL-safe alphabet, padding optional, ``data:`` URL prefix allowed).

    Raises
    ------
    ApiError
        400 ``invalid_base64`` or ``empty_image``.
    """
    text = data.strip()
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError(400, "invalid_base64", "A data: URL must be base64-encoded (data:image/jpeg;base64,...)")
    text = _BASE64_JUNK.sub("", text)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", "image_data is not valid base64") from None
    if not raw:
        raise ApiError(400, "empty_image", "image_data decodes to zero bytes")
    return raw


def _header_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header without decoding the pixels; None when Pillow cannot tell."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as image:
            return image.size
    except Image.DecompressionBombError:
        return (1 << 30, 1 << 30)
    except Exception:  # unknown or broken header: OpenCV gets a try below
        return None


def decode_image(raw: bytes, *, max_side_px: int) -> np.ndarray:
    """BGR uint8 pixels of an encoded image (JPEG, PNG, WebP, BMP, TIFF...), at most ``max_side_px`` a side.

    Raises
    ------
    ApiError
        413 ``image_too_large``; 415 ``not_an_image``.
    """
    size = _header_size(raw)
    if size is not None and max(size) > max_side_px:
        raise ApiError(413, "image_too_large",
                       f"The image is {size[0]}x{size[1]} pixels; the limit is {max_side_px}x{max_side_px}")
    try:
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.ndim != 3 or image.size == 0:
        raise ApiError(415, "not_an_image", "image_data is not an image OpenCV can decode (JPEG, PNG, WebP, BMP...)")
    height, width = image.shape[:2]
    if max(height, width) > max_side_px:
        raise ApiError(413, "image_too_large",
                       f"The image is {width}x{height} pixels; the limit is {max_side_px}x{max_side_px}")
    return image


def decode_image_base64(data: str, *, max_side_px: int) -> np.ndarray:
    """:func:`decode_base64` then :func:`decode_image`."""
    return decode_image(decode_base64(data), max_side_px=max_side_px)


def probe_video_seconds(path: str | Path, *, max_seconds: float) -> float:
    """Duration of a video file's first video stream from its packet timestamps (demuxed, not decoded).

    Raises
    ------
    VideoError
        ``not_a_video``, ``no_video_stream``, ``corrupt_video``, ``no_frames`` or ``clip_too_long``
        (longer than ``max_seconds``).
    """
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError("not_a_video", f"The upload is not a readable video ({exc.__class__.__name__})") from None
    with container:
        if not container.streams.video:
            raise VideoError("no_video_stream", "The upload has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        first = last = None
        count = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is not None and packet.time_base is not None:
                    t = float(packet.pts * packet.time_base)
                    step = float(packet.duration * packet.time_base) if packet.duration else 1.0 / rate
                else:
                    t, step = count / rate, 1.0 / rate
                first = t if first is None else min(first, t)
                last = t + step if last is None else max(last, t + step)
                count += 1
                if last - first > max_seconds:
                    raise VideoError("clip_too_long", f"The clip is longer than the limit of {max_seconds:g} s")
        except av.error.FFmpegError as exc:
            if count == 0:
                raise VideoError("corrupt_video", f"The upload could not be read: {exc}") from None
        if count == 0:
            raise VideoError("no_frames", "The upload contains no video frames")
    return float(last - first)
