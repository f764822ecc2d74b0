"""PNG files of rendered pixels, written without Pillow's per-row filter search.

A PNG (W3C PNG specification, 2nd ed., 2003) is the signature, then chunks ``length · type · data · CRC-32(type ·
data)``: IHDR (width, height, bit depth 8, colour type 2 = RGB or 6 = RGBA), pHYs (pixels per metre), IDAT (the
zlib stream of every row prefixed with its filter type) and IEND. Every row here has filter type 0 ("none") and the
stream is deflated at level 3 by zlib-ng (``zlib_ng``: the zlib format and API, a faster compressor), by Python's
zlib where zlib-ng is not installed.

Why not Pillow: Pillow tries every filter on every row and keeps the one that sums smallest, about 60% of its
encoding time. On the 23 figures of ``inputs/`` the unfiltered stream takes 0.46 s of CPU instead of 1.09 s and
is 4% smaller; at 60 SYNTHETIC municipalities 1.88 s instead of 4.43 s, 2% smaller; the same pixels
(``tests/benchmarks/bench_png_encode.out``).

Why zlib-ng: deflating the same unfiltered rows at level 3 takes 0.17 s of CPU instead of zlib's 0.50 s on the 23
figures of ``inputs/`` (4.68 MB instead of 4.33), 0.88 s instead of 2.33 s at 60 SYNTHETIC municipalities (23.3 MB
instead of 21.1); the same pixels. Its level 2 was 0.14 s (4.80 MB), ISA-L's (``isal``) level 2 0.07 s but 5.28 MB.
The bytes of its stream may differ between processors (its SIMD paths), never the pixels.
"""

from __future__ import annotations

import struct
import threading
import zlib

import numpy as np

try:
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - a declared dependency; Python's zlib writes the same pixels, slower
    _deflate = zlib

#: Compression level of the image stream (level 3 with unfiltered rows: see the module docstring's measurements).
ZLIB_LEVEL = 3
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bytes(rgba, width: int, height: int, alpha: bool, dpi: float) -> bytes:
    """The PNG file of ``height`` rows of ``width`` RGBA pixels (``rgba``: 4·width·height bytes, row by row).

    The rows are prefixed with their filter byte and deflated :data:`BLOCK_ROWS` at a time from one small buffer
    per thread (:func:`_rows_buffer`), not from one array of the whole image: zlib's stream does not depend on how
    its input is split (``Z_NO_FLUSH``; the same bytes), and that array (5-11 MB per figure) was fresh memory whose
    first touch the kernel served with transparent huge pages (numpy asks for them for arrays of 4 MB or more),
    zeroing 2 MB at a time: in cold runs on inputs/ the figures' kernel time fell by 16% and their CPU time by 5%
    (medians of the paired ratios, 10 runs each, ``tests/benchmarks/bench_figs_ab.out``).

    Parameters
    ----------
    rgba : buffer
        The pixels as R, G, B, A bytes, top row first (matplotlib's Agg buffer).
    width, height : int
        Size in pixels.
    alpha : bool
        Keep the alpha channel (colour type 6); False writes R, G, B only (colour type 2).
    dpi : float
        Resolution stored in pHYs as round(dpi / 0.0254) pixels per metre, as Pillow stores it.
    """
    channels = 4 if alpha else 3
    pixels = np.frombuffer(rgba, np.uint8).reshape(height, width, 4)
    rows = _rows_buffer(channels * width + 1)
    deflate = _deflate.compressobj(ZLIB_LEVEL, _deflate.DEFLATED, 15, 9, _deflate.Z_DEFAULT_STRATEGY)
    parts = []
    for start in range(0, height, BLOCK_ROWS):
        block = pixels[start:start + BLOCK_ROWS]
        some = rows[:len(block)]
        if alpha:
            some[:, 1:] = block.reshape(len(block), 4 * width)
        else:  # one byte-strided copy per channel: numpy copies block[:, :, :3] as a whole ~3x slower
            for c in range(3):
                some[:, 1 + c::3] = block[:, :, c]
        parts.append(deflate.compress(some))
    parts.append(deflate.flush())
    ppm = int(dpi / 0.0254 + 0.5)
    return b"".join((_SIGNATURE,
                     _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)),
                     _chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)),
                     _chunk(b"IDAT", b"".join(parts)),
                     _chunk(b"IEND", b"")))


#: Rows deflated at a time by :func:`png_bytes`: 64 rows of a 1,152-pixel-wide figure are 221 KB (RGB), a buffer
#: that stays in the processor's cache and is reused for every figure a process draws.
BLOCK_ROWS = 64
_BUFFERS = threading.local()


def _rows_buffer(row_bytes: int) -> np.ndarray:
    """This thread's buffer of :data:`BLOCK_ROWS` rows of ``row_bytes`` bytes, each starting with filter type 0
    ("none"); kept for the next image of the same row length (the figures of a run share their width)."""
    rows = getattr(_BUFFERS, "rows", None)
    if rows is None or rows.shape[1] != row_bytes:
        rows = _BUFFERS.rows = np.zeros((BLOCK_ROWS, row_bytes), np.uint8)  # filter bytes 0, never written again
    return rows


def opaque(rgba) -> bool:
    """Whether every pixel of ``rgba`` (R, G, B, A bytes) has alpha 255. Each pixel read as a little-endian 32-bit
    word has its alpha as the top byte, so the smallest word is >= 0xFF000000 exactly then: one contiguous pass,
    not a strided one over every fourth byte."""
    return int(np.frombuffer(rgba, "<u4").min(initial=0xFFFFFFFF)) >= 0xFF000000


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: big-endian length of ``data``, the type, the data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
