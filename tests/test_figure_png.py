"""save_png writes the pixels matplotlib's own Agg canvas and PNG writer write (meta.present.figures.save_png and
meta.present.agg_text, issue 15)."""
from __future__ import annotations

import numpy as np
import pytest


def _figure(facecolor, title: str = "Ωmega 1,5"):
    """A small figure with text as the figures have it: a title, bold and rotated labels, a two-line label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(3.0, 2.0), facecolor=facecolor)
    ax = fig.add_axes([0.3, 0.4, 0.6, 0.5])
    ax.plot([0, 1], [0, 1], color="#b22222")
    ax.set_title(title, fontsize=9, loc="left")
    for i, label in enumerate(["schatter: REML", "toets: HKSJ †", "schatter: REML"]):
        ax.text(0.3 * i, 0, label, transform=ax.get_xaxis_text1_transform(7)[0], rotation=60, ha="right", va="top",
                fontsize=8, clip_on=False)
    fig.text(0.01, 0.5, "Gepoold (REML)\n  k = 2, τ² = 0", fontsize=9, fontweight="bold", va="center")
    return fig


def _matplotlib_pixels(tmp_path, facecolor, title) -> np.ndarray:
    """The RGBA pixels matplotlib's own canvas and PNG writer make of :func:`_figure`."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig = _figure(facecolor, title)
    FigureCanvasAgg(fig)
    fig.savefig(tmp_path / "mpl.png", dpi=144)
    plt.close(fig)
    return np.asarray(Image.open(tmp_path / "mpl.png").convert("RGBA"))


@pytest.mark.parametrize("facecolor, mode", [("white", "RGB"), ((1, 1, 1, 0), "RGBA")])
def test_save_png_keeps_matplotlibs_pixels_and_drops_alpha_only_when_every_pixel_is_opaque(tmp_path, facecolor, mode):
    import matplotlib.pyplot as plt
    from PIL import Image

    from meta.present.figures import save_png

    for title in ("Ωmega 1,5", "Ωmega 1,5 — again"):  # the second figure draws lines of text seen before
        fig = _figure(facecolor, title)
        save_png(fig, tmp_path / "ours.png", 144)
        plt.close(fig)
        ours = Image.open(tmp_path / "ours.png")
        expected = _matplotlib_pixels(tmp_path, facecolor, title)
        assert ours.mode == mode
        assert ours.size == (432, 288)
        if mode == "RGB":
            assert (expected[..., 3] == 255).all()
            expected = expected[..., :3]
        assert np.array_equal(np.asarray(ours), expected)


def test_text_caching_renderer_measures_and_draws_text_as_matplotlibs_agg_renderer():
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    from meta.present.agg_text import TextCachingRenderer, caches_text

    assert caches_text()  # matplotlib 3.10, as pyproject pins it
    plain, cached = RendererAgg(300, 200, 144), TextCachingRenderer(300, 200, 144)
    for size, weight in ((9, "normal"), (8, "bold"), (9, "normal")):
        prop = FontProperties(size=size, weight=weight)
        for s in ("Wageningen: ontheffing", "−0,05", "Wageningen: ontheffing"):
            assert cached.get_text_width_height_descent(s, prop, False) == plain.get_text_width_height_descent(
                s, prop, False)


def test_text_cache_is_kept_apart_for_every_font_and_text_setting_and_no_other():
    """The cache's settings key (agg_text._settings, from the font and text rcParams listed once) is what reading
    every rcParam gives, and changes with a font or text setting, not with another setting."""
    import matplotlib as mpl

    from meta.present import agg_text

    def read_all():
        return tuple((k, repr(v)) for k, v in sorted(mpl.rcParams.items()) if k.startswith(("font.", "text.")))

    base = agg_text._settings()
    assert base == read_all()
    for change, moves in (({"font.size": 13.0}, True), ({"text.antialiased": False}, True),
                          ({"font.weight": "bold"}, True), ({"lines.linewidth": 3.0}, False)):
        with mpl.rc_context(change):
            assert agg_text._settings() == read_all()
            assert (agg_text._settings() != base) is moves


def test_png_streams_are_deflated_by_zlib_ng_and_inflate_with_pythons_zlib():
    """The declared compressor is the one used (a missing install would only be slower, so it is checked here), and
    its stream is the zlib format: Python's zlib inflates it to the unfiltered rows."""
    import struct
    import zlib

    from meta.present import png

    assert png._deflate.__name__ == "zlib_ng.zlib_ng"
    rng = np.random.default_rng(3)
    pixels = np.full((40, 30, 4), 255, np.uint8)
    pixels[5:9, 3:20, :3] = rng.integers(0, 256, (4, 17, 3), dtype=np.uint8)
    data = png.png_bytes(pixels.tobytes(), 30, 40, alpha=False, dpi=144)
    at = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[at - 4:at])
    rows = np.frombuffer(zlib.decompress(data[at + 4:at + 4 + length]), np.uint8).reshape(40, 1 + 90)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(40, 30, 3), pixels[..., :3])


def test_png_stream_deflated_block_by_block_is_the_stream_of_the_whole_image_deflated_at_once():
    """png_bytes deflates BLOCK_ROWS rows at a time from a reused buffer; its IDAT is byte for byte the stream of all
    rows (filter byte 0 and the pixels, built here with numpy.concatenate) deflated in one call: SYNTHETIC images of
    heights below, at and across the block size, widths changing between calls (the buffer is remade), RGB and
    RGBA."""
    import struct

    from meta.present import png

    rng = np.random.default_rng(1202)
    b = png.BLOCK_ROWS
    for w, h, alpha in ((7, 1, False), (50, b, False), (50, b + 1, True), (33, 3 * b - 5, False), (50, 2 * b, True)):
        rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
        rgba[h // 2:, : w // 2] = 255  # runs that deflate finds across a block's end
        body = rgba if alpha else rgba[..., :3]
        rows = np.concatenate([np.zeros((h, 1), np.uint8), body.reshape(h, -1)], axis=1)
        z = png._deflate.compressobj(png.ZLIB_LEVEL, png._deflate.DEFLATED, 15, 9, png._deflate.Z_DEFAULT_STRATEGY)
        whole = z.compress(rows.tobytes()) + z.flush()
        data = png.png_bytes(rgba.tobytes(), w, h, alpha=alpha, dpi=100)
        at = data.index(b"IDAT")
        (length,) = struct.unpack(">I", data[at - 4:at])
        assert data[at + 4:at + 4 + length] == whole, (w, h, alpha)


def test_opaque_exactly_when_every_pixel_has_alpha_255():
    """png.opaque against every pixel's alpha byte read one by one: SYNTHETIC random colours, all opaque, then one
    pixel (first, middle, last) at alpha 254 or 0; no pixels at all count as opaque."""
    from meta.present.png import opaque

    rng = np.random.default_rng(15)
    pixels = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    assert opaque(pixels.tobytes())
    for i in (0, 17, 34):
        for a in (254, 0):
            p = pixels.copy().reshape(-1, 4)
            p[i, 3] = a
            assert opaque(p.tobytes()) is bool((p[:, 3] == 255).all()) is False
    assert opaque(b"")


@pytest.mark.parametrize("alpha", [False, True])
def test_png_writer_files_decode_with_pillow_to_the_same_pixels_and_resolution(tmp_path, alpha):
    """meta.present.png writes what an independent decoder (Pillow) reads back bit for bit: SYNTHETIC random pixels
    (every byte value, odd sizes), RGB or RGBA, and the resolution in pHYs."""
    from PIL import Image

    from meta.present.png import png_bytes

    rng = np.random.default_rng(20261202)
    for w, h in ((1, 1), (37, 5), (300, 201)):
        rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
        (tmp_path / "x.png").write_bytes(png_bytes(rgba.tobytes(), w, h, alpha=alpha, dpi=144))
        image = Image.open(tmp_path / "x.png")
        assert image.mode == ("RGBA" if alpha else "RGB")
        assert image.size == (w, h)
        assert np.array_equal(np.asarray(image), rgba if alpha else rgba[..., :3])
        assert image.info["dpi"] == pytest.approx((144, 144), abs=0.01)


#: A small figure drawn and saved by save_png into the folder ``out`` (a path given by the caller)
_QUICK_FIGURE = """
from meta.present.drawing import new_figure
from meta.present.figures import save_png
fig = new_figure(1.5, facecolor="white")
ax = fig.add_axes([0.3, 0.3, 0.6, 0.6])
ax.plot([0, 1], [0, 1], color="#b22222", lw=1.3)
ax.scatter([0.5], [0.4], s=60, marker="s", color="#1f4e79")
ax.text(0.1, 0.8, "Gepoold (REML) −0,05", fontsize=9, fontweight="bold")
ax.set_xlabel("effect (pp)", fontsize=9)
save_png(fig, out, 144)
"""


def test_figure_workers_quick_matplotlib_import_draws_the_same_and_leaves_artists_settable(tmp_path):
    """workers.warm imports matplotlib without the artists' set() help text (drawing.import_matplotlib): a figure
    drawn after it, in a fresh process, has the bytes of the same figure drawn here after a plain import; set()
    still takes keywords, and an artist class made later gets its help text."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    check = _QUICK_FIGURE + """
import matplotlib.artist, matplotlib.lines
assert matplotlib.lines.Line2D.set.__doc__ is None  # left out at import
line = matplotlib.lines.Line2D([0, 1], [0, 1])
line.set(color="red", linewidth=2)
assert line.get_color() == "red" and line.get_linewidth() == 2
class Later(matplotlib.lines.Line2D):
    pass
assert "linewidth" in Later.set.__doc__
"""
    repo = Path(__file__).resolve().parents[1]
    code = f"from meta.present import workers\nworkers.warm()\nout = {str(tmp_path / 'quick.png')!r}\n" + check
    subprocess.run([sys.executable, "-c", code], cwd=repo, check=True, env={**os.environ, "PYTHONPATH": str(repo)})
    exec(_QUICK_FIGURE, {"out": tmp_path / "plain.png"})
    assert (tmp_path / "quick.png").read_bytes() == (tmp_path / "plain.png").read_bytes()


def _axes_figure(one_tick: bool):
    """Two Axes as the figures have them: a number x axis with a label below its tick labels (forest plot, overview),
    a number y axis with grid lines (specification curve) above a plain x axis; with ``one_tick`` every axis with
    ticks drawn by one_tick.draw_with_one_tick."""
    from meta.present import drawing, one_tick as lean

    fig = drawing.new_figure(3.0, facecolor="white")
    low, high = fig.add_axes([0.2, 0.6, 0.7, 0.3]), fig.add_axes([0.2, 0.15, 0.7, 0.3])
    low.plot([-3.3, 12.7], [0, 1])
    low.set_yticks([])
    low.tick_params(axis="x", labelsize=9)
    low.set_xlabel("Effect (procentpunten)", fontsize=9)
    high.plot([0, 5], [-0.21, 0.47])
    high.grid(axis="y", color="0.9")
    if one_tick:
        for axis in (low.xaxis, high.xaxis, high.yaxis):
            lean.draw_with_one_tick(axis)
    return fig


def test_a_number_axis_drawn_with_one_tick_has_matplotlibs_pixels_and_makes_no_tick_per_location(tmp_path):
    """one_tick.draw_with_one_tick draws an axis with its first Tick moved to every location: the same bytes as
    matplotlib's Axis.draw (tick marks, labels, grid lines, and the axis label placed under the tick labels), and no
    Tick made while drawing (Axis.draw makes one per location, and again for the label and the spine)."""
    import matplotlib.axis as maxis

    from meta.present.figures import save_png

    made = []
    init = maxis.Tick.__init__

    def counted(self, *args, **kwargs):
        made.append(type(self).__name__)
        init(self, *args, **kwargs)

    files = {}
    for lean in (False, True):
        fig = _axes_figure(lean)
        maxis.Tick.__init__ = counted
        try:
            made.clear()
            save_png(fig, tmp_path / f"{lean}.png", 144)
        finally:
            maxis.Tick.__init__ = init
        files[lean] = ((tmp_path / f"{lean}.png").read_bytes(), len(made))
    assert files[True][0] == files[False][0]
    assert files[False][1] >= 8 and files[True][1] == 0


def test_text_layouts_kept_are_matplotlibs_layouts_handed_out_as_copies_and_only_inside_the_block():
    """agg_text.layouts_kept: a text laid out by a TextCachingRenderer gets what Text._get_layout computes (extent,
    lines and their places, descent) whether laid out first or again, as a fresh bbox and list each time; outside
    the block Text._get_layout is matplotlib's own again."""
    from matplotlib.text import Text

    from meta.present import agg_text, drawing

    original = Text.__dict__["_get_layout"]
    fig = drawing.new_figure(2.0)
    texts = [fig.text(0.1, 0.5, "Gepoold (REML)\n  k = 2, τ² = 0", fontsize=9, fontweight="bold", va="center"),
             fig.text(0.3, 0.2, "schatter: REML †", rotation=60, ha="right", va="top", fontsize=8),
             fig.text(0.5, 0.5, "−0,5", ha="center", va="baseline", fontsize=9, linespacing=1.5)]
    renderer = agg_text.TextCachingRenderer(400, 300, 144)
    expected = [original(t, renderer) for t in texts]
    with agg_text.layouts_kept():
        for _ in range(2):  # laid out, then taken from what was kept
            for text, (bbox, info, descent) in zip(texts, expected):
                got = text._get_layout(renderer)
                assert (got[0].bounds, got[1], got[2]) == (bbox.bounds, info, descent)
                assert got[0] is not bbox and got[1] is not info
        got[0].x0 = -1e9  # a caller changing its copy changes nothing kept
        assert texts[-1]._get_layout(renderer)[0].bounds == expected[-1][0].bounds
    assert Text.__dict__["_get_layout"] is original


def test_the_kept_text_layouts_are_bounded_as_the_kept_lines_are(monkeypatch):
    """A long-lived process that draws many figures keeps at most agg_text._MAX_LINES layouts per font settings, as
    it keeps at most that many rasterised lines (the layouts were once kept without a bound)."""
    from meta.present import agg_text, drawing

    monkeypatch.setattr(agg_text, "_MAX_LINES", 3)
    fig = drawing.new_figure(2.0)
    texts = [fig.text(0.1, 0.1 * i, f"regel {i}", fontsize=9) for i in range(7)]
    renderer = agg_text.TextCachingRenderer(400, 300, 144)
    renderer._layouts.clear()
    with agg_text.layouts_kept():
        for text in texts:
            text._get_layout(renderer)
            renderer.get_text_width_height_descent(text.get_text(), text._fontproperties, False)
            assert len(renderer._layouts) <= 3 and len(renderer._lines) <= 3
