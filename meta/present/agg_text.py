"""Text laid out once per process: matplotlib's Agg renderer, but every line of text is shaped and rasterised once
(stage 5, used by ``figures.save_png``).

matplotlib's Agg renderer shapes a line of text with FreeType (``FT2Font.set_text``, ~0.4 ms for a label) twice per
figure — once to measure it for the layout, once to draw it — and again in every figure, although a figure repeats
its tick labels, its specification labels (one row of them per panel) and its headers, and the figures of a run
repeat each other's. :class:`TextCachingRenderer` keeps, per line of text, font properties, dpi and antialiasing,
what those calls leave behind: the width, height and descent, and the glyph bitmap with its offset. It draws the
kept bitmap exactly as ``RendererAgg.draw_text`` draws the font's bitmap (the same rounding, the same
``draw_text_image`` call, which rotates in raster space), so the pixels are the same bytes.
"""

from __future__ import annotations

import contextlib
from math import cos, radians, sin

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.text import Text

#: {font and text settings: {(line, font properties, dpi, antialiased): (width, height, descent, bitmap, x offset,
#: y offset)}}; a process draws a few thousand distinct lines at most
_LINES: dict = {}
_MAX_LINES = 20000
#: {font and text settings: {text layout key (:func:`_layout_key`): what ``Text._get_layout`` returned}}; bounded
#: as the lines are
_LAYOUTS: dict = {}


def _keep(cache: dict, key, value):
    """``cache[key] = value``, the cache emptied first when it holds :data:`_MAX_LINES` entries (a long-lived process
    drawing many figures keeps at most that many); ``value``."""
    if len(cache) >= _MAX_LINES:
        cache.clear()
    cache[key] = value
    return value


def caches_text() -> bool:
    """Whether this matplotlib draws text as :class:`TextCachingRenderer` copies it: ``RendererAgg.draw_text`` of
    matplotlib 3.10 (pyproject pins ``matplotlib<3.11``; 3.11 draws glyph by glyph)."""
    return mpl.__version__.startswith("3.10.")


#: The names of the rcParams that choose and shape a font (``font.*``, ``text.*``), in sorted order: matplotlib's
#: rcParams have a fixed set of names, so they are listed once (reading every rcParam and its repr per figure, as
#: :func:`_settings` did, took ~4 ms)
_SETTING_NAMES = tuple(sorted(k for k in mpl.rcParams if k.startswith(("font.", "text."))))


def _settings() -> tuple:
    """The rcParams that choose and shape a font (``font.*``, ``text.*``) with their values: a change of them starts
    a new cache."""
    return tuple((k, repr(mpl.rcParams[k])) for k in _SETTING_NAMES)


def _prop_key(prop) -> tuple:
    """Everything of a FontProperties that picks the font and its size (what its ``__hash__`` covers)."""
    return (tuple(prop.get_family()), prop.get_slant(), prop.get_variant(), prop.get_weight(), prop.get_stretch(),
            prop.get_size_in_points(), prop.get_file(), prop.get_math_fontfamily())


class TextCachingRenderer(RendererAgg):
    """``RendererAgg`` whose plain-text lines are shaped and rasterised once per process (see the module)."""

    def __init__(self, width, height, dpi):
        super().__init__(width, height, dpi)
        settings = _settings()
        self._lines = _LINES.setdefault(settings, {})
        self._layouts = _LAYOUTS.setdefault(settings, {})
        self._antialiased = bool(mpl.rcParams["text.antialiased"])

    def _line(self, s: str, prop, antialiased: bool) -> tuple:
        """(width, height, descent, bitmap, x offset, y offset) of one line, as ``RendererAgg`` computes them
        (``_prepare_font``, ``set_text`` at angle 0, ``draw_glyphs_to_bitmap``), from the cache when seen before."""
        key = (s, _prop_key(prop), self.dpi, antialiased)
        found = self._lines.get(key)
        if found is None:
            font = self._prepare_font(prop)
            font.set_text(s, 0, flags=get_hinting_flag())
            w, h = font.get_width_height()
            d = font.get_descent()
            font.draw_glyphs_to_bitmap(antialiased=antialiased)
            xo, yo = font.get_bitmap_offset()
            found = _keep(self._lines, key, (w / 64.0, h / 64.0, d / 64.0, font.get_image(), xo / 64.0, yo / 64.0))
        return found

    def get_text_width_height_descent(self, s, prop, ismath):
        """Width, height and descent of plain text as ``RendererAgg`` measures them (mathtext and TeX: unchanged);
        the line is rasterised at the default antialiasing too, ready for its drawing."""
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        return self._line(s, prop, self._antialiased)[:3]

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        """``RendererAgg.draw_text`` with the line's kept bitmap: the same offsets, rounding and
        ``draw_text_image`` call (mathtext: unchanged)."""
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        _, _, d, image, xo, yo = self._line(s, prop, bool(gc.get_antialiased()))
        xd = d * sin(radians(angle))
        yd = d * cos(radians(angle))
        x = round(x + xo + xd)
        y = round(y + yo + yd)
        self._renderer.draw_text_image(image, x, y + 1, angle, gc)


class TextCachingCanvas(FigureCanvasAgg):
    """``FigureCanvasAgg`` drawing with :class:`TextCachingRenderer` (one renderer per figure size and dpi, as
    ``FigureCanvasAgg.get_renderer`` keeps one)."""

    def get_renderer(self):
        w, h = self.figure.bbox.size
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = TextCachingRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


def _layout_key(text: Text, renderer: TextCachingRenderer) -> tuple:
    """Everything ``Text._get_layout`` of matplotlib 3.10 reads of ``text`` and the renderer: the text, its font,
    whether it is TeX or mathtext, line spacing, rotation (and its mode), alignments and the dpi (the renderer's
    measures depend on its font settings too: its cache, :attr:`TextCachingRenderer._layouts`, is kept per
    settings)."""
    return (text.get_text(), _prop_key(text._fontproperties), text.get_usetex(), text.get_parse_math(),
            text._linespacing, text.get_rotation(), text.get_rotation_mode(), text._get_multialignment(),
            text._horizontalalignment, text._verticalalignment, text.get_figure(root=True).dpi, renderer.dpi)


def _kept_layout(original):
    """``Text._get_layout`` whose result, for a text drawn by a :class:`TextCachingRenderer` (not wrapped: the
    wrapping depends on the text's place), is kept per :func:`_layout_key` and handed out as a copy (a fresh bbox
    and list): the same extent and line positions, without laying the text out again (a tick label is laid out
    for its box and again to draw it; the figures of a run repeat their tick labels and headers)."""
    def _get_layout(self, renderer):
        if not isinstance(renderer, TextCachingRenderer) or self.get_wrap():
            return original(self, renderer)
        key = _layout_key(self, renderer)
        found = renderer._layouts.get(key)
        if found is None:
            found = _keep(renderer._layouts, key, original(self, renderer))
        bbox, info, descent = found
        return bbox.frozen(), list(info), descent
    return _get_layout


@contextlib.contextmanager
def layouts_kept():
    """Within the block, text drawn by a :class:`TextCachingRenderer` is laid out once per process
    (:func:`_kept_layout`); ``Text._get_layout`` is restored after it."""
    original = Text.__dict__["_get_layout"]
    Text._get_layout = _kept_layout(original)
    try:
        yield
    finally:
        Text._get_layout = original
