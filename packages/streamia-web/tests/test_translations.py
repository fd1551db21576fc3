"""Every text the web app passes through `t()` has its Spanish entry in `i18n.js`, and every
entry is used: a new English text without a translation fails here, not in front of a user."""

from __future__ import annotations

import re

from streamia_web import static_root

ASSETS = static_root() / "assets"
# t('text') or t('text', {...}): the literal texts (a t(variable) is looked up from a table
# of literal texts, which `_TABLED` finds).
_CALL = re.compile(r"""\bt\(\s*'((?:[^'\\]|\\.)*)'""")
_TABLED = re.compile(r"""\[\s*'[\w-]+',\s*'((?:[^'\\]|\\.)*)'\s*\]|\b\w+:\s*'((?:[^'\\]|\\.)*)'""")
_ENTRY = re.compile(r"""^\s+(?:'((?:[^'\\]|\\.)*)'|([A-Za-z_]\w*)):\s*'""", re.MULTILINE)


def _spanish() -> set[str]:
    text = (ASSETS / "i18n.js").read_text(encoding="utf-8")
    table = text[text.index("const ES = {") : text.index("\n};", text.index("const ES = {"))]
    return {quoted or bare for quoted, bare in _ENTRY.findall(table)}


def _used() -> set[str]:
    used: set[str] = set()
    for script in ASSETS.glob("*.js"):
        used.update(_CALL.findall(script.read_text(encoding="utf-8")))
    return {text.replace("\\'", "'") for text in used}


def test_every_translated_text_has_a_spanish_entry():
    missing = sorted(_used() - _spanish())
    assert not missing, f"add these to ES in i18n.js: {missing}"


def test_every_spanish_entry_is_a_text_the_app_shows():
    tabled: set[str] = set()
    for script in ASSETS.glob("*.js"):
        for pair, keyed in _TABLED.findall(script.read_text(encoding="utf-8")):
            tabled.add(pair or keyed)
    unused = sorted(_spanish() - _used() - tabled)
    assert not unused, f"nothing shows these ES entries: {unused}"


def test_placeholders_match_between_the_languages():
    text = (ASSETS / "i18n.js").read_text(encoding="utf-8")
    pairs = re.findall(r"""^\s+'([^'\n]*\{\w+\}[^'\n]*)':\s*'([^'\n]*)'""", text, re.MULTILINE)
    assert pairs  # the check below reads something
    for english, spanish in pairs:
        assert sorted(re.findall(r"\{\w+\}", english)) == sorted(re.findall(r"\{\w+\}", spanish)), (
            english
        )
