"""The frame tag: a strip of black and white cells that the browser's skin meter draws below each camera frame
before the browser encodes it (``ui/skin_meter/skin_meter.js`` writes it, :func:`read_frame_tag` reads it).

It carries what the meter measured on the raw camera frame, so the number travels with its own frame through
WebRTC: no clock to align, no frame to match. The strip is ``1/30`` of the camera picture's height (16 rows under
640x480) and two rows of ``CELLS_PER_ROW`` cells; every cell is one bit, black (0) or white (1), read at its centre,
so it survives VP8 and the browser scaling the stream. Payload, most significant bit first::

    magic (8) | frame counter (16) | mask version (8) | red, green, blue (20 each) | CRC-16/CCITT (16)

A colour is its mean over the skin ROI times ``COLOUR_SCALE`` (resolution 1/4096 of a grey level, well under a
real pulse's 0.1-1 %); all ones means "not measured" (no mask yet, or no lit skin pixel). The CRC is
:func:`binascii.crc_hqx` (initial value 0xFFFF) of the first 92 bits padded to 12 bytes.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np

MAGIC = 0xB4
CELLS_PER_ROW = 64
TAG_ROWS = 2
#: The strip's height is the camera picture's height / STRIP_DIVISOR (rounded), so frame height = picture * 31/30.
STRIP_DIVISOR = 30
COLOUR_BITS = 20
COLOUR_SCALE = 4096.0
NOT_MEASURED = (1 << COLOUR_BITS) - 1
_FIELDS = (("magic", 8), ("counter", 16), ("version", 8), ("red", COLOUR_BITS), ("green", COLOUR_BITS),
           ("blue", COLOUR_BITS))
_PAYLOAD_BITS = sum(bits for _, bits in _FIELDS)  # 92
_CRC_BITS = 16


@dataclass(frozen=True)
class FrameTag:
    """What the browser's meter measured on one raw camera frame.

    Attributes
    ----------
    counter : int
        The meter's frame counter (mod 65536): gaps are frames the browser or the network dropped.
    mask_version : int
        Which ROI mask (mod 256, as sent by :class:`smartmirror.ui.skin_meter.SkinMeterMasks`) it used.
    skin_rgb : ndarray, shape (3,)
        Mean R, G, B (0-255) of the lit skin pixels inside the mask; NaN when not measured.
    """

    counter: int
    mask_version: int
    skin_rgb: np.ndarray


def strip_rows(picture_height: int) -> int:
    """Rows of the strip under a camera picture ``picture_height`` rows high."""
    return max(TAG_ROWS, round(picture_height / STRIP_DIVISOR))


def _crc(bits: list[int]) -> int:
    padded = bits + [0] * (-len(bits) % 8)
    data = bytes(int("".join(map(str, padded[i:i + 8])), 2) for i in range(0, len(padded), 8))
    return binascii.crc_hqx(data, 0xFFFF)


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def tag_bits(counter: int, mask_version: int, skin_rgb: np.ndarray | None) -> list[int]:
    """The tag's bits (payload then CRC, padded with zeros to fill the strip)."""
    colours = [NOT_MEASURED] * 3
    if skin_rgb is not None and np.all(np.isfinite(skin_rgb)):
        colours = [int(min(NOT_MEASURED - 1, max(0, round(float(v) * COLOUR_SCALE)))) for v in skin_rgb]
    values = (MAGIC, counter & 0xFFFF, mask_version & 0xFF, *colours)
    bits = [bit for (_, width), value in zip(_FIELDS, values, strict=True) for bit in _to_bits(value, width)]
    bits += _to_bits(_crc(bits), _CRC_BITS)
    return bits + [0] * (TAG_ROWS * CELLS_PER_ROW - len(bits))


def _cell_bounds(index: int, cells: int, length: int) -> tuple[int, int]:
    return round(index * length / cells), round((index + 1) * length / cells)


def draw_frame_tag(picture_bgr: np.ndarray, counter: int, mask_version: int, skin_rgb: np.ndarray | None) -> np.ndarray:
    """The picture with the tag strip below it (what the browser's meter sends; for tests and the benchmark)."""
    height, width = picture_bgr.shape[:2]
    rows = strip_rows(height)
    strip = np.zeros((rows, width), dtype=np.uint8)
    for i, bit in enumerate(tag_bits(counter, mask_version, skin_rgb)):
        row, column = divmod(i, CELLS_PER_ROW)
        y0, y1 = _cell_bounds(row, TAG_ROWS, rows)
        x0, x1 = _cell_bounds(column, CELLS_PER_ROW, width)
        strip[y0:y1, x0:x1] = 255 * bit
    return np.concatenate([picture_bgr, np.repeat(strip[:, :, None], 3, axis=2)], axis=0)


def tag_rows_in(frame_height: int) -> int:
    """Rows of the strip at the bottom of a tagged frame ``frame_height`` rows high (scaled or not)."""
    return round(frame_height / (STRIP_DIVISOR + 1))


def split_frame_tag(image_bgr: np.ndarray) -> tuple[np.ndarray, FrameTag | None]:
    """The camera picture and its tag, or the image unchanged and None when it carries no valid tag.

    The strip is assumed to be the bottom ``height / (STRIP_DIVISOR + 1)`` rows (any scaling of the whole frame
    keeps that share); a cell is read as the mean luma of its middle half against mid-grey, and the magic byte
    and the CRC must match.
    """
    height, width = image_bgr.shape[:2]
    rows = tag_rows_in(height)
    if rows < TAG_ROWS or width < CELLS_PER_ROW:
        return image_bgr, None
    strip = image_bgr[height - rows:]
    columns = [_cell_bounds(c, CELLS_PER_ROW, width) for c in range(CELLS_PER_ROW)]
    starts = np.array([x0 + (x1 - x0) // 4 for x0, x1 in columns])
    stops = np.maximum(starts + 1, [x1 - (x1 - x0) // 4 for x0, x1 in columns])
    bits: list[int] = []
    for row in range(TAG_ROWS):
        y0, y1 = _cell_bounds(row, TAG_ROWS, rows)
        ya = y0 + (y1 - y0) // 4
        yb = max(ya + 1, y1 - (y1 - y0) // 4)
        profile = strip[ya:yb].mean(axis=(0, 2))  # mean luma-ish of each column over the cells' middle rows
        cumulative = np.concatenate([[0.0], np.cumsum(profile)])
        means = (cumulative[stops] - cumulative[starts]) / (stops - starts)
        bits.extend(int(v) for v in means >= 128)
    payload, crc = bits[:_PAYLOAD_BITS], bits[_PAYLOAD_BITS:_PAYLOAD_BITS + _CRC_BITS]
    values, position = [], 0
    for _, width_bits in _FIELDS:
        values.append(int("".join(map(str, payload[position:position + width_bits])), 2))
        position += width_bits
    if values[0] != MAGIC or int("".join(map(str, crc)), 2) != _crc(payload):
        return image_bgr, None
    colours = np.array([np.nan if v == NOT_MEASURED else v / COLOUR_SCALE for v in values[3:]], dtype=np.float64)
    return image_bgr[:height - rows], FrameTag(counter=values[1], mask_version=values[2], skin_rgb=colours)
