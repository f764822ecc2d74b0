"""The report reads in a real browser: headless Chromium renders it, with every figure embedded (no network)."""
import re
import shutil
import subprocess

import os

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_report_is_self_contained(real_run):
    out, _ = real_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=['\"](https?:|//)", html), "report must not load anything from the network"
    n_png = len(list((out / "figures").glob("*.png")))
    assert html.count("data:image/png;base64,") == n_png > 0
    for section in ("headline", "coverage", "forest", "side", "methods", "sources"):
        assert f'id="{section}"' in html
    assert "REML" in html and "Hartung-Knapp" in html and "uit significantietekens" in html  # words, not codes


REQUIRED = os.environ.get("META_REQUIRE_BROWSER") == "1"  # set by .ci/run, which installs Chromium


def test_ci_has_chromium_when_it_requires_it():
    assert CHROMIUM is not None or not REQUIRED, "META_REQUIRE_BROWSER=1 but no chromium on PATH"


@pytest.mark.skipif(CHROMIUM is None and not REQUIRED, reason="Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(real_run, tmp_path):
    out, _ = real_run
    shot = tmp_path / "report.png"
    res = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,3000",
                          f"--screenshot={shot}", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert shot.is_file() and shot.stat().st_size > 50_000, res.stderr[-2000:]
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
                          (out / "report.html").as_uri()], capture_output=True, text=True, timeout=180).stdout
    assert "Kerntabel" in dom and dom.count("<img") >= 1  # Dutch by default
