"""Decoding what clients send: base64 images (size-checked before decoding) and video uploads (probed cheaply)."""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from smartmirror.api.routes.errors import ApiError
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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): they carry the frame size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Formats whose size Pillow reads from the header before OpenCV decodes them.
_PIL_FORMATS = frozenset({"WEBP", "BMP", "DIB", "TIFF", "PPM", "SGI", "SUN", "TGA"})


def _png_size(raw: bytes) -> tuple[int, int] | None:
    """IHDR's width and height (IHDR must be the first chunk, CRC-checked as libpng does)."""
    if len(raw) < 33 or raw[8:16] != b"\x00\x00\x00\rIHDR":
        return None
    if zlib.crc32(raw[12:29]) & 0xFFFFFFFF != struct.unpack(">I", raw[29:33])[0]:
        return None
    width, height = struct.unpack(">II", raw[16:24])
    return (width, height) if width and height else None


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """The first start-of-frame segment's size, walking the segments by their lengths (thumbnails inside APP
    segments are skipped, as libjpeg does)."""
    i, end = 2, len(raw)
    while i + 4 <= end:
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:            # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):   # standalone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):    # end of image / start of scan before any frame header
            return None
        length = struct.unpack(">H", raw[i + 2:i + 4])[0]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if i + 9 > end:
                return None
            height, width = struct.unpack(">HH", raw[i + 5:i + 9])
            return (width, height) if width and height else None
        i += 2 + length
    return None


def image_header_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) read from an encoded image's header without decoding pixels; None when it cannot be read.

    PNG and JPEG are parsed here (the same fields libpng and libjpeg use); WebP, BMP and TIFF by Pillow.
    """
    if raw.startswith(_PNG_SIGNATURE):
        return _png_size(raw)
    if raw.startswith(b"\xff\xd8"):
        return _jpeg_size(raw)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in _PIL_FORMATS:
                return None
            return image.size if min(image.size) > 0 else None
    except Image.DecompressionBombError:
        return (1 << 30, 1 << 30)
    except Exception:  # unknown or broken header
        return None


def checked_image_size(raw: bytes, *, max_side_px: int) -> tuple[int, int]:
    """The header's (width, height), refusing what the decoder must not see.

    Raises
    ------
    ApiError
        415 ``not_an_image`` (no readable JPEG/PNG/WebP/BMP/TIFF header); 413 ``image_too_large``.
    """
    size = image_header_size(raw)
    if size is None:
        raise ApiError(415, "not_an_image",
                       "image_data is not a JPEG, PNG, WebP, BMP or TIFF image whose size its header gives")
    if max(size) > max_side_px:
        raise ApiError(413, "image_too_large",
                       f"The image is {size[0]}x{size[1]} pixels; the limit is {max_side_px}x{max_side_px}")
    return size


def decode_image(raw: bytes, *, max_side_px: int) -> np.ndarray:
    """BGR uint8 pixels of an encoded image (JPEG, PNG, WebP, BMP, TIFF), at most ``max_side_px`` a side.

    The size is read from the header first (:func:`checked_image_size`); the decoder only runs on images within
    the limit, and its result must have the size the header promised.

    Raises
    ------
    ApiError
        413 ``image_too_large``; 415 ``not_an_image``.
    """
    width, height = checked_image_size(raw, max_side_px=max_side_px)
    try:
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.ndim != 3 or image.size == 0:
        raise ApiError(415, "not_an_image", "image_data is not an image OpenCV can decode (JPEG, PNG, WebP, BMP...)")
    if image.shape[:2] not in ((height, width), (width, height)):  # EXIF orientation may turn it
        raise ApiError(415, "not_an_image", f"The image decodes to {image.shape[1]}x{image.shape[0]} pixels, "
                                            f"not the {width}x{height} its header gives")
    return image


def decode_image_base64(data: str, *, max_side_px: int) -> np.ndarray:
    """:func:`decode_base64` then :func:`decode_image`."""
    return decode_image(decode_base64(data), max_side_px=max_side_px)


#: Most frames per second of ``max_clip_seconds`` a clip may hold (a 120 s limit: 7200 frames).
MAX_CLIP_FPS = 60


def probe_video(path: str | Path, *, max_seconds: float, max_side_px: int | None = None) -> float:
    """Check a video file from its container before any frame is decoded; its duration in seconds.

    The first video stream's width and height (codec parameters) must be at most ``max_side_px``; its duration,
    from the container's header and then from the packet timestamps (demuxed, not decoded), at most
    ``max_seconds``; its packets at most ``MAX_CLIP_FPS * max_seconds``.

    Raises
    ------
    VideoError
        ``not_a_video``, ``no_video_stream``, ``corrupt_video``, ``no_frames``, ``clip_too_large`` (resolution
        or frame count) or ``clip_too_long``.
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
        width, height = stream.codec_context.width, stream.codec_context.height
        if max_side_px is not None:
            if not width or not height:
                raise VideoError("not_a_video", "The upload's video stream does not say its frame size")
            if max(width, height) > max_side_px:
                raise VideoError("clip_too_large", f"The clip is {width}x{height} pixels; the limit is "
                                                   f"{max_side_px} pixels a side")
        declared = [float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0,
                    container.duration / 1e6 if container.duration else 0.0]
        if max(declared) > max_seconds:
            raise VideoError("clip_too_long", f"The clip is {max(declared):.0f} s long; the limit is "
                                              f"{max_seconds:g} s")
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        max_frames = int(MAX_CLIP_FPS * max_seconds)
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
                if count > max_frames:
                    raise VideoError("clip_too_large", f"The clip has more than {max_frames} frames "
                                                       f"({MAX_CLIP_FPS} per second of the {max_seconds:g} s limit)")
        except av.error.FFmpegError as exc:
            if count == 0:
                raise VideoError("corrupt_video", f"The upload could not be read: {exc}") from None
        if count == 0:
            raise VideoError("no_frames", "The upload contains no video frames")
    return float(last - first)


