"""What writing the figures' PNGs costs, and what other encodings would cost and weigh (issue 15; nothing of meta is
changed by it).

``meta.present.figures.save_png`` hands the rendered pixels to Pillow (adaptive filter per row: none, up, sub or
Paeth, whichever sums smallest; zlib level 3, strategy Z_FILTERED, memLevel 9). This script reads every PNG of a
figures folder (the pixels a run wrote), encodes them again with each variant below, checks that every variant
decodes to the same pixels, and prints per variant the CPU seconds (``time.process_time``, best of ``--reps``) and
the total bytes, with the ratios to Pillow's encoding. Variants other than ``pillow-3`` write other bytes (the same
pixels): they are a change of output, measured here so the project lead can decide.

* ``pillow-3``: what meta wrote before e47b85f (Pillow at zlib level 3; the baseline of the ratios).
* ``meta``: what meta writes since e47b85f, :func:`meta.present.png.png_bytes` (the bytes are checked to equal the
  files read; its time includes making the RGBA buffer it takes from the RGB rows read).
* ``pillow-1``: Pillow at zlib level 1.
* ``none-3``, ``none-1``: no filter (type 0 on every row), zlib level 3 / 1 (Z_DEFAULT_STRATEGY, memLevel 9),
  written by a 20-line PNG writer (IHDR, pHYs, IDAT, IEND as Pillow writes them).
* ``up-3``, ``sub-3``: filter "up" / "sub" on every row (numpy), zlib level 3.

Usage::

    .venv/bin/python tests/benchmarks/bench_png_encode.py outputs/figures --reps 3
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(cid)))


def write_png(rows: np.ndarray, w: int, h: int, filt: str, level: int, dpi: float = 144) -> bytes:
    """A PNG of RGB ``rows`` (h × 3w uint8) with one filter on every row and zlib at ``level``."""
    if filt == "none":
        data = np.empty((h, 3 * w + 1), np.uint8)
        data[:, 0] = 0
        data[:, 1:] = rows
    elif filt == "up":
        data = np.empty((h, 3 * w + 1), np.uint8)
        data[:, 0] = 2
        data[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=data[1:, 1:])
    else:  # sub
        data = np.empty((h, 3 * w + 1), np.uint8)
        data[:, 0] = 1
        data[:, 1:4] = rows[:, :3]
        np.subtract(rows[:, 3:], rows[:, :-3], out=data[:, 4:])
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    idat = z.compress(data) + z.flush()
    d = int(dpi / 0.0254 + 0.5)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
             _chunk(b"pHYs", struct.pack(">IIB", d, d, 1))]
    parts += [_chunk(b"IDAT", idat[i:i + 65536]) for i in range(0, len(idat), 65536)]
    return b"".join(parts + [_chunk(b"IEND", b"")])


def variants() -> dict:
    def pillow(level):
        def enc(im, rows):
            b = io.BytesIO()
            im.save(b, format="png", compress_level=level, dpi=(144, 144))
            return b.getvalue()
        return enc

    def own(filt, level):
        return lambda im, rows: write_png(rows, im.size[0], im.size[1], filt, level)

    def meta(im, rows):
        from meta.present.png import png_bytes

        w, h = im.size
        rgba = np.full((h, w, 4), 255, np.uint8)
        rgba[:, :, :3] = rows.reshape(h, w, 3)
        return png_bytes(rgba.tobytes(), w, h, alpha=False, dpi=144)

    return {"pillow-3": pillow(3), "meta": meta, "pillow-1": pillow(1), "none-3": own("none", 3),
            "none-1": own("none", 1), "up-3": own("up", 3), "sub-3": own("sub", 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    files = sorted(args.folder.glob("*.png"))
    images = []
    for p in files:
        im = Image.open(p)
        im.load()
        images.append((p, im, np.asarray(im).reshape(im.size[1], -1)))
    px = sum(im.size[0] * im.size[1] for _, im, _ in images)
    print(f"bench_png_encode: {len(files)} PNGs of {args.folder} ({px / 1e6:.1f} Mpx), best of {args.reps}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = None
    for name, enc in variants().items():
        best, size = float("inf"), 0
        for _ in range(args.reps):
            t0 = time.process_time()
            out = [enc(im, rows) for _, im, rows in images]
            best = min(best, time.process_time() - t0)
        size = sum(len(b) for b in out)
        for (p, im, rows), b in zip(images, out):
            if name == "meta" and b != p.read_bytes():
                raise SystemExit(f"{p}: meta.present.png does not write the bytes meta wrote")
            if not np.array_equal(np.asarray(Image.open(io.BytesIO(b))).reshape(rows.shape), rows):
                raise SystemExit(f"{p}: {name} changes the pixels")
        base = base or (best, size)
        print(f"  {name:9s} CPU {best:6.3f} s (x{best / base[0]:.2f})   {size / 1e3:9.1f} kB (x{size / base[1]:.2f})"
              f"   pixels identical" + ("; bytes = meta's" if name == "meta" else ""))
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
