"""Number axes drawn with one Tick object moved to every tick location (stage 5, used by ``drawing.number_axis``).

matplotlib's ``Axis.draw`` makes a :class:`matplotlib.axis.Tick` per tick location (three lines and two texts, each
set up property by property, then the first tick's properties copied onto it: ~1 ms a tick) and works out the
ticks to draw twice (once more to place the axis label). A forest plot's x axis spent a fifth of the figure's
drawing time there. :func:`draw_with_one_tick` lets an axis draw as ``Axis.draw`` of matplotlib 3.10 draws it —
the same locator, formatter, ticks in view, label boxes, label and offset text, and per tick its grid line, tick
marks and labels in that order — with the axis' first major Tick (the one every other tick copies its properties
from) moved to each location and drawn there, so the pixels and the drawing calls are the same.
"""

from __future__ import annotations

import types

import matplotlib as mpl
from matplotlib import ticker
from matplotlib import transforms as mtransforms


def draw_with_one_tick(axis) -> None:
    """Let ``axis`` (an x or y axis of a plain Axes) draw with one Tick object (see the module); with another
    matplotlib than 3.10 (pyproject pins ``matplotlib<3.11``) it draws as usual."""
    if mpl.__version__.startswith("3.10."):
        axis.draw = types.MethodType(_draw, axis)


def _simple(axis) -> bool:
    """Whether :func:`_draw` draws ``axis`` as ``Axis.draw`` would: a visible axis, neither rasterized nor
    filtered, with major ticks only (no minor locator), on a 2D Axes, its label placed from its own tick labels
    alone (not aligned with another Axes' labels)."""
    groups = axis.get_figure(root=False)._align_label_groups
    name = axis._get_axis_name()
    return (axis.get_visible() and not axis.get_rasterized() and axis.get_agg_filter() is None
            and axis.axes.name == "rectilinear" and isinstance(axis.get_minor_locator(), ticker.NullLocator)
            and (name not in groups or groups[name].get_siblings(axis.axes) == [axis.axes]))


def _in_view(axis, locs, labels) -> list[tuple]:
    """(location, label) of the ticks ``Axis._update_ticks`` keeps: those inside the view interval."""
    low, high = sorted(axis.get_view_interval())
    transform = axis.get_transform()
    interval = transform.transform([low, high])
    shown = []
    for loc, label in zip(locs, labels):
        try:
            loc_t = transform.transform(loc)
        except AssertionError:  # a masked value of some scale, as matplotlib skips it
            continue
        if mtransforms._interval_contains_close(interval, loc_t):
            shown.append((loc, label))
    return shown


def _place(tick, loc, label: str) -> None:
    """Move ``tick`` to ``loc`` with ``label``, as ``Axis._update_ticks`` sets up each of its ticks."""
    tick.update_position(loc)
    tick.label1.set_text(label)
    tick.label2.set_text(label)


def _draw(axis, renderer) -> None:
    """``Axis.draw`` of matplotlib 3.10 with the axis' first major Tick drawn at every tick location (an axis that
    is not :func:`_simple` is drawn by ``Axis.draw``)."""
    if not _simple(axis):
        return type(axis).draw(axis, renderer)
    renderer.open_group("matplotlib.axis", gid=axis.get_gid())  # Axis.draw's group: its module's name
    locs = axis.get_majorticklocs()
    shown = _in_view(axis, locs, axis.major.formatter.format_ticks(locs))
    tick = axis.majorTicks[0]
    boxes, boxes2 = [], []
    for loc, label in shown:
        _place(tick, loc, label)
        if tick.label1.get_visible():
            boxes.append(tick.label1.get_window_extent(renderer))
        if tick.label2.get_visible():
            boxes2.append(tick.label2.get_window_extent(renderer))
    for loc, label in shown:
        _place(tick, loc, label)
        tick.draw(renderer)
    _place_label(axis, renderer, [tick] if shown else [], boxes, boxes2)
    axis.label.draw(renderer)
    axis._update_offset_text_position(boxes, boxes2)
    axis.offsetText.set_text(axis.major.formatter.get_offset())
    axis.offsetText.draw(renderer)
    renderer.close_group("matplotlib.axis")
    axis.stale = False


def _place_label(axis, renderer, drawn: list, boxes: list, boxes2: list) -> None:
    """Place the axis label by matplotlib's own ``_update_label_position``, which works out the ticks to draw again
    (for the tick label boxes, and in the spine's extent for the length of a drawn tick's marks): here it is told
    what was drawn (``drawn``: the Tick, if any tick was drawn; ``boxes``, ``boxes2``: the label boxes) instead of
    making a Tick per location once more."""
    in_groups = axis._get_axis_name() in axis.get_figure(root=False)._align_label_groups
    axis._update_ticks = lambda: drawn
    axis._get_tick_boxes_siblings = lambda renderer: (boxes, boxes2) if in_groups else ([], [])
    try:
        axis._update_label_position(renderer)
    finally:
        del axis._update_ticks, axis._get_tick_boxes_siblings
