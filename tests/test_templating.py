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


def test_a_template_loaded_from_the_bytecode_cache_renders_the_same_as_one_compiled_afresh(tmp_path):
    from jinja2 import Environment, PackageLoader

    from meta.present import template_cache

    def env(cache):
        e = Environment(loader=PackageLoader("meta.present", "templates"), autoescape=True, finalize=templating.esc,
                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, bytecode_cache=cache)
        e.filters["png_data"] = templating.png_data
        return e

    values = dict(lang="nl", t=lambda key, **kw: templating.text(key, "nl", **kw), n_b=1000, n_c=2000, ks=[2, 3],
                  rows=[dict(tau="0 < 1", name="REML + HKSJ", cells=["95% (12 pp)", None])], sentence="x & y")
    fresh = env(None).get_template("simulation_quote.html.j2").render(**values)
    env(template_cache.bytecode_cache(tmp_path)).get_template("simulation_quote.html.j2")  # compiles and stores
    assert len(list(tmp_path.iterdir())) == 1
    cached = env(template_cache.bytecode_cache(tmp_path))
    assert cached.get_template("simulation_quote.html.j2").render(**values) == fresh and "&lt; 1" in fresh
    for f in tmp_path.iterdir():  # a truncated cache file is compiled again, not an error
        f.write_bytes(f.read_bytes()[:20])
    assert env(template_cache.bytecode_cache(tmp_path)).get_template("simulation_quote.html.j2").render(**values) == fresh


def test_the_bytecode_cache_is_skipped_where_it_cannot_be_written(tmp_path):
    from meta.present import template_cache

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert template_cache.bytecode_cache(blocker / "cache") is None  # its folder cannot be made
    cache = template_cache.bytecode_cache(tmp_path / "cache")
    (tmp_path / "cache").chmod(0o500)
    try:
        from jinja2.bccache import Bucket

        bucket = Bucket(templating.environment(), "k", "checksum")
        bucket.code = compile("x = 1", "<t>", "exec")
        cache.dump_bytecode(bucket)  # no error (as root the folder stays writable: then it is simply written)
    finally:
        (tmp_path / "cache").chmod(0o700)


def test_the_bytecode_cache_key_changes_with_the_jinja_version_and_lives_in_python_s_cache_folder(monkeypatch):
    import jinja2

    from meta.present import template_cache

    key = template_cache.cache_key()
    monkeypatch.setattr(jinja2, "__version__", jinja2.__version__ + ".post1")
    assert template_cache.cache_key() != key  # another Jinja2 compiles afresh
    assert template_cache.PYCACHE == Path(templating.__file__).parent / "__pycache__"  # ignored by git and code_files
