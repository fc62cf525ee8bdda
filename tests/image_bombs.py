"""Hand-made hostile images: PNGs whose pixels are tiny to send and huge to decode."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes, *, bad_crc: bool = False) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc ^ 1 if bad_crc else crc)


def png_bomb(width: int, height: int, *, bad_ancillary_crc: bool = False) -> bytes:
    """A black 8-bit grey PNG of ``width`` x ``height`` (a few hundred KB for 10000x10000).

    With ``bad_ancillary_crc`` a ``tEXt`` chunk before the pixels has a wrong CRC: libpng (OpenCV) only warns and
    decodes the pixels, Pillow refuses to read the header.
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"tEXt", b"k\x00v", bad_crc=bad_ancillary_crc)
            + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))
