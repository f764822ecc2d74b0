"""save_png writes the pixels matplotlib's own PNG writer writes (meta.present.figures.save_png, issue 15)."""
from __future__ import annotations

import numpy as np
import pytest


def _figure(facecolor):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.0, 1.0), facecolor=facecolor)
    ax = fig.add_axes([0.2, 0.3, 0.7, 0.6])
    ax.plot([0, 1], [0, 1], color="#b22222")
    ax.set_title("Ωmega 1,5", fontsize=9, loc="left")
    return fig


@pytest.mark.parametrize("facecolor, mode", [("white", "RGB"), ((1, 1, 1, 0), "RGBA")])
def test_save_png_keeps_matplotlibs_pixels_and_drops_alpha_only_when_every_pixel_is_opaque(tmp_path, facecolor, mode):
    import matplotlib.pyplot as plt
    from PIL import Image

    from meta.present.figures import save_png

    fig = _figure(facecolor)
    save_png(fig, tmp_path / "ours.png", 144)
    fig.savefig(tmp_path / "mpl.png", dpi=144)  # matplotlib's writer: always RGBA
    plt.close(fig)
    ours, theirs = Image.open(tmp_path / "ours.png"), Image.open(tmp_path / "mpl.png")
    assert ours.mode == mode
    assert ours.size == theirs.size == (288, 144)
    expected = np.asarray(theirs.convert("RGBA"))
    if mode == "RGB":
        assert (expected[..., 3] == 255).all()
        expected = expected[..., :3]
    assert np.array_equal(np.asarray(ours), expected)
