"""The report's HTML from Jinja2 templates (``meta/present/templates/``), autoescaped.

Python computes every value (numbers formatted by :mod:`meta.i18n`), the templates lay them out. Every
``{{ value }}`` is escaped on output unless it is :class:`markupsafe.Markup` (a catalogue text, which is HTML, or a
section already rendered). The escape is :func:`html.escape` (``'`` → ``&#x27;``, ``"`` → ``&quot;``), applied through
the environment's ``finalize`` hook, so the report's bytes do not depend on markupsafe's spelling (``&#39;``).

Whitespace is explicit: ``trim_blocks`` and ``lstrip_blocks`` drop the lines that hold only a block tag,
``keep_trailing_newline`` keeps a template's last newline (the page ends with one), and a fragment's lines are joined
with ``{#- -#}`` or ``-`` on a tag where the HTML has no line break.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

from meta.i18n import t

if TYPE_CHECKING:
    from jinja2 import Environment


def esc(value) -> Markup:
    """``value`` as HTML text: Markup unchanged, None as nothing, anything else through :func:`html.escape`."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape("" if value is None else str(value)))


@functools.cache
def environment() -> Environment:
    """The one Jinja2 environment of the report (templates shipped as package data of :mod:`meta.present`; their
    compiled code kept between runs by :mod:`meta.present.template_cache`). Jinja2 is imported here, when the first
    template is rendered: the figure workers, forked from ``meta run``'s main process, render none, and that process
    renders the report only after forking them (~0.02 s of CPU less before the fork)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from meta.present.template_cache import bytecode_cache

    env = Environment(loader=PackageLoader("meta.present", "templates"), autoescape=True, finalize=esc,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined,
                      bytecode_cache=bytecode_cache())
    env.filters["png_data"] = png_data
    return env


def png_data(path) -> str:
    """A PNG file as a ``data:`` URI, so the report is one self-contained file (a placeholder inside
    :func:`pngs_later`)."""
    if _LATER:
        _LATER[-1].append(path)
        return f"\0png{len(_LATER[-1]) - 1}\0"
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


#: The figures :func:`png_data` left to :func:`fill_pngs`, one list per active :func:`pngs_later` block.
_LATER: list[list] = []
#: A placeholder of :func:`png_data`: NUL never occurs in the page (no output holds a control character).
_PLACEHOLDER = re.compile("\0png([0-9]+)\0")


@contextlib.contextmanager
def pngs_later():
    """Render a page before its figures exist: inside the block :func:`png_data` reads no file and returns a
    placeholder, recording the path in the list yielded; :func:`fill_pngs` puts the ``data:`` URIs in once the
    figures are drawn, giving the bytes a rendering after the drawing gives (the escape leaves both unchanged)."""
    paths: list = []
    _LATER.append(paths)
    try:
        yield paths
    finally:
        _LATER.remove(paths)


def fill_pngs(page: str, paths: list) -> str:
    """``page`` rendered inside :func:`pngs_later` with its placeholders replaced by the figures' ``data:`` URIs."""
    return _PLACEHOLDER.sub(lambda m: png_data(paths[int(m.group(1))]), page)


def text(key: str, lang: str, **values):
    """The catalogue text ``key`` (:func:`meta.i18n.t`, HTML) with ``values`` escaped into its placeholders.

    A list in the catalogue (table heads, navigation) is returned as it is: its items are escaped on output.
    """
    value = t(key, lang, **{k: esc(v) for k, v in values.items()})
    return Markup(value) if isinstance(value, str) else value


def render(name: str, lang: str, **values) -> Markup:
    """Template ``name`` rendered with ``values``, ``lang`` and ``t(key, **values)`` (:func:`text` in ``lang``)."""
    return Markup(environment().get_template(name).render(lang=lang, t=functools.partial(text, lang=lang), **values))
