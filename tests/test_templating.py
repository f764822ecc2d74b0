"""The report's templates and message catalogue: shipped with the package, escaped as before, complete."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from meta import i18n
from meta.present import templating

REPO = Path(__file__).resolve().parents[1]


def test_every_template_and_the_catalogue_are_package_data_in_pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [(package.replace(".", "/"), glob) for package, globs in data.items() for glob in globs]
    files = [p.relative_to(REPO) for p in (REPO / "meta" / "present" / "templates").iterdir()]
    files.append(i18n.MESSAGES.relative_to(REPO))
    assert len(files) > 10
    for f in files:
        assert any(fnmatch.fnmatch(str(f), f"{pkg}/{glob}") for pkg, glob in shipped), f"{f} is not package data"


def test_values_are_escaped_with_html_escape_and_markup_is_kept():
    env = templating.environment()
    out = env.from_string("{{ a }}|{{ b }}|{{ c }}").render(a="Sanders' <b> & \"x\"", b=templating.esc("<i>"), c=None)
    assert out == "Sanders&#x27; &lt;b&gt; &amp; &quot;x&quot;|&lt;i&gt;|"


def test_catalogue_text_keeps_its_html_and_escapes_the_values_put_into_it():
    out = templating.text("pooled_count", "en", n=1, total=2, cells="a < b")
    assert "<b>Pooled:</b>" in out and "a &lt; b" in out


def test_every_catalogue_key_has_a_text_in_both_languages_of_the_same_kind(tmp_path):
    for key, texts in i18n.TEXT.items():
        assert set(texts) == {"nl", "en"}, key
        assert type(texts["nl"]) is type(texts["en"]), key
    bad = tmp_path / "messages.toml"
    bad.write_text('[only_dutch]\nnl = "alleen"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="only_dutch"):
        i18n.load_messages(bad)
