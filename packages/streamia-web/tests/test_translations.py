"""Every text the web app shows goes through the translation table in `i18n.js`.

The scripts are parsed (tree-sitter's JavaScript grammar), not searched with patterns, and
every string literal is judged by where it goes:

- the first argument of `t()` / `msg()` is a table key: it must have its Spanish entry;
- a literal where the user reads it (a child of `h()`, a toast, a confirm, an `aria-label`,
  `title`, `placeholder`, `alt` or `hint`, a `textContent`…) must not hold a single word: it
  has to come from `t()`;
- a literal in a place known to be the program's own (a class, an id, a URL, an event name, a
  comparison…) is free;
- anywhere else, a literal that reads like prose (a capitalised word, words with spaces, a
  sentence) fails: new code that shows English outside `t()` fails here, not in front of a user.

The table itself is checked too: one entry per key, every key in both languages (a Spanish
string, with the same `{placeholders}` and the same edge spaces), none unused. `index.html`'s
texts are table keys that `app.js` translates. The browser test (tests/e2e/test_web_ui.py)
then reads the pages in Spanish for any English text of the table.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

from streamia_web import static_root

ASSETS = static_root() / "assets"
ROOT = Path(__file__).resolve().parents[3]
PARSER = Parser(Language(tree_sitter_javascript.language()))

# Names that read the same in every language.
NAMES = re.compile(r"Streamia|Español|English")
WORD = re.compile(r"[A-Za-z]{2,}")
# Prose: a capitalised word, two words with a space between, or a sentence's end.
PROSE = re.compile(r"\b[A-Z][a-z]+|[A-Za-z]{2,}\s+[A-Za-z]|[A-Za-z][.!?:]\s*$")

# Attributes and options a user reads, and those that are the program's own.
VISIBLE_KEYS = {"aria-label", "title", "placeholder", "alt", "hint", "busyText", "label"}
OWN_KEYS = {
    "class", "type", "id", "name", "role", "scope", "rel", "target", "kind", "preload",
    "decoding", "loading", "method", "credentials", "accept", "autocomplete", "inputmode",
    "htmlFor", "href", "value", "conflictField", "sort", "status", "next", "block",
    "year", "month", "day", "hour", "minute",
    "Accept", "Authorization", "Range", "Content-Type",
    "aria-current", "aria-describedby", "aria-disabled", "aria-hidden", "aria-keyshortcuts",
    "aria-labelledby", "aria-live", "aria-pressed", "aria-busy", "aria-invalid", "aria-expanded",
}  # fmt: skip
# Calls whose string arguments are the program's own (names, selectors, URLs, log lines).
OWN_CALLS = {
    "addEventListener", "removeEventListener", "getElementById", "querySelector",
    "querySelectorAll", "closest", "getAttribute", "hasAttribute", "removeAttribute",
    "getItem", "setItem", "removeItem", "getResponseHeader", "setRequestHeader", "open",
    "toggle", "add", "remove", "startsWith", "endsWith", "parse", "get", "set", "enc",
    "encodeURIComponent", "api", "upload", "fetch", "go", "href", "navLink", "warn", "error",
    "log", "Event", "DOMException", "notify", "clear", "setStatus", "choose", "row", "load",
}  # fmt: skip
# Calls whose n-th argument is the program's own: (name, index).
OWN_ARGS = {("h", 0), ("link", 0), ("append", 0), ("setAttribute", 0), ("field", 1), ("cover", 2)}
# Functions (not methods) whose arguments are shown: name → the shown indexes, or with
# `SHOWN_FROM` the first of the shown rest.
SHOWN_ARGS = {
    "toast": {0}, "confirm": {0}, "prompt": {0, 1}, "alert": {0}, "fieldError": {1},
    "showSuccess": {1}, "required": {1}, "field": {0}, "link": {1}, "busy": {2},
}  # fmt: skip
SHOWN_FROM = {"h": 2, "replace": 1, "page": 0}
SHOWN_PROPERTIES = {"textContent", "innerText", "title", "placeholder", "alt", "label"}
OWN_PROPERTIES = {"name", "className", "mode", "value", "type", "id"}
# A literal's value passes through these unchanged on its way to where it goes.
TRANSPARENT = {
    "parenthesized_expression",
    "ternary_expression",
    "array",
    "template_substitution",
    "template_string",
    "spread_element",
}


@dataclass(frozen=True)
class Literal:
    script: str
    line: int
    text: str  # the source text (a template keeps its ${…})
    where: str

    def __str__(self) -> str:
        return f"{self.script}:{self.line} {self.text!r} ({self.where})"


def _tree(path: Path) -> Node:
    return PARSER.parse(path.read_bytes()).root_node


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _value(node: Node) -> str:
    """A plain string literal's value (its escapes decoded)."""
    assert node.type == "string", node.type
    parts = []
    for child in node.named_children:
        text = (child.text or b"").decode()
        parts.append(text if child.type == "string_fragment" else _unescape(text))
    return "".join(parts)


def _unescape(escape: str) -> str:
    simple = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
    if escape[1] in simple:
        return simple[escape[1]]
    if escape[1] == "u":
        return chr(int(escape[2:].strip("{}"), 16))
    raise AssertionError(f"unexpected escape {escape}")


def _name(call: Node) -> str:
    callee = call.child_by_field_name("function") or call.child_by_field_name("constructor")
    assert callee is not None
    if callee.type == "member_expression":
        callee = callee.child_by_field_name("property")
        assert callee is not None
    return (callee.text or b"").decode()


def _slot(node: Node) -> Node:
    """The expression whose value `node` becomes: up through ternaries, `||`, `+`, arrays…"""
    while (parent := node.parent) is not None:
        if parent.type == "ternary_expression" and parent.child_by_field_name("condition") == node:
            return node
        operator = parent.child_by_field_name("operator")
        if parent.type in TRANSPARENT or (
            parent.type == "binary_expression"
            and operator is not None
            and operator.type in ("||", "??", "&&", "+")
        ):
            node = parent
            continue
        return node
    return node


def _table(root: Node) -> Node:
    for node in _walk(root):
        name = node.child_by_field_name("name")
        if node.type == "variable_declarator" and name is not None and name.text == b"ES":
            value = node.child_by_field_name("value")
            assert value is not None and value.type == "object"
            return value
    raise AssertionError("no `const ES = {…}` in i18n.js")


def _inside(node: Node, ancestor: Node) -> bool:
    return ancestor.start_byte <= node.start_byte and node.end_byte <= ancestor.end_byte


def _judge(node: Node) -> tuple[str, str]:
    """(verdict, where) for a literal: 'key', 'own', 'shown' or 'other'."""
    slot = _slot(node)
    parent = slot.parent
    assert parent is not None
    if parent.type == "arguments":
        call = parent.parent
        assert call is not None
        name, index = _name(call), parent.named_children.index(slot)
        where = f"argument {index} of {name}()"
        if name in ("t", "msg") and index == 0:
            return "key", where
        if name in OWN_CALLS or (name, index) in OWN_ARGS:
            return "own", where
        if name == "setAttribute" and index == 1:
            attribute = parent.named_children[0]
            shown = attribute.type != "string" or _value(attribute) not in OWN_KEYS
            return ("shown" if shown else "own"), where
        callee = call.child_by_field_name("function")
        if callee is not None and callee.type == "identifier":
            if index in SHOWN_ARGS.get(name, ()) or index >= SHOWN_FROM.get(name, 99):
                return "shown", where
        return "other", where
    if parent.type == "pair":
        key = parent.child_by_field_name("key")
        assert key is not None
        if key == slot:
            return "own", "a property name"
        name = _value(key) if key.type == "string" else (key.text or b"").decode()
        if name in OWN_KEYS:
            return "own", f"{name}:"
        return ("shown" if name in VISIBLE_KEYS else "other"), f"{name}:"
    if parent.type in ("import_statement", "export_statement"):
        return "own", "a module"
    if parent.type == "binary_expression":
        return "own", "a comparison"
    if parent.type == "assignment_expression":
        left = parent.child_by_field_name("left")
        assert left is not None
        prop = left.child_by_field_name("property") if left.type == "member_expression" else None
        target = (left.text or b"").decode()
        if prop is not None and (prop.text or b"").decode() in SHOWN_PROPERTIES:
            return "shown", f"{target} ="
        if prop is not None and (prop.text or b"").decode() in OWN_PROPERTIES:
            return "own", f"{target} ="
        return "other", f"{target} ="
    if parent.type == "subscript_expression" and parent.child_by_field_name("index") == slot:
        return "own", "a property name"
    return "other", parent.type


def _literals() -> Iterator[tuple[Literal, str, Node]]:
    for script in sorted(ASSETS.glob("*.js")):
        root = _tree(script)
        table = _table(root) if script.name == "i18n.js" else None
        for node in _walk(root):
            if node.type not in ("string", "template_string"):
                continue
            if table is not None and _inside(node, table):
                continue
            verdict, where = _judge(node)
            text = (node.text or b"").decode()
            yield Literal(script.name, node.start_point[0] + 1, text, where), verdict, node


def _keys_used() -> dict[str, list[Literal]]:
    used: dict[str, list[Literal]] = {}
    for literal, verdict, node in _literals():
        if verdict == "key":
            assert node.type == "string", f"a key is a plain string, not a template: {literal}"
            used.setdefault(_value(node), []).append(literal)
    return used


def _spanish() -> dict[str, str]:
    table = _table(_tree(ASSETS / "i18n.js"))
    entries: dict[str, str] = {}
    for pair in table.named_children:
        if pair.type == "comment":
            continue
        assert pair.type == "pair", f"only 'English': 'Spanish' entries in ES: {pair.text!r}"
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        assert key is not None and value is not None
        english = _value(key) if key.type == "string" else (key.text or b"").decode()
        assert value.type == "string", f"{english!r}: the Spanish is a plain string"
        assert english not in entries, f"{english!r} is in ES twice (the last one wins)"
        entries[english] = _value(value)
    return entries


class _ShellTexts(HTMLParser):
    """The texts of index.html a user reads (not those of <noscript>, shown without the app)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("noscript", "script", "style", "title"):
            self.skipping.append(tag)
        for name, value in attrs:
            if name in VISIBLE_KEYS and value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def _shell_texts() -> list[str]:
    parser = _ShellTexts()
    parser.feed((ASSETS.parent / "index.html").read_text(encoding="utf-8"))
    return [text for text in parser.texts if WORD.search(NAMES.sub("", text))]


def _words(text: str) -> str:
    """The text without names, `${…}` substitutions and URLs, for the word checks."""
    text = re.sub(r"\$\{[^}]*\}", " ", text)
    text = re.sub(r"https?://\S*", " ", text)
    return NAMES.sub("", text)


def test_no_english_outside_the_translation_table():
    shown = []
    other = []
    for literal, verdict, node in _literals():
        if node.type == "template_string":
            body = "".join(
                (c.text or b"").decode() for c in node.named_children if c.type == "string_fragment"
            )
        else:
            body = _value(node)
        words = _words(body)
        if verdict == "shown" and WORD.search(words):
            shown.append(str(literal))
        elif verdict == "other" and PROSE.search(words) and not words.startswith("/"):
            other.append(str(literal))
    assert not shown, "shown to the user without t():\n" + "\n".join(shown)
    assert not other, "English text outside t() (use t() or msg()):\n" + "\n".join(other)


def test_the_server_s_english_reaches_the_user_only_through_api_js():
    """An answer's `message` is the server's English: pages show `errorText(err)` (by `code`)
    or their own `t()` text, never `body.message` / `err.message`."""
    found = []
    for script in sorted(ASSETS.glob("*.js")):
        if script.name == "api.js":
            continue
        for node in _walk(_tree(script)):
            prop = (
                node.child_by_field_name("property") if node.type == "member_expression" else None
            )
            if prop is not None and prop.text == b"message":
                found.append(
                    f"{script.name}:{node.start_point[0] + 1} {(node.text or b'').decode()}"
                )
    assert not found, found


def test_every_key_has_its_spanish_entry():
    spanish = _spanish()
    missing = {key: [str(x) for x in where] for key, where in _keys_used().items()}
    missing = {key: where for key, where in missing.items() if key not in spanish}
    missing.update({text: ["index.html"] for text in _shell_texts() if text not in spanish})
    assert not missing, f"add these to ES in i18n.js: {missing}"


def test_every_spanish_entry_is_a_text_the_app_shows():
    unused = sorted(set(_spanish()) - set(_keys_used()) - set(_shell_texts()))
    assert not unused, f"nothing shows these ES entries: {unused}"


def test_every_entry_is_in_both_languages():
    for english, spanish in _spanish().items():
        assert spanish.strip(), f"{english!r} has no Spanish"
        assert sorted(re.findall(r"\{\w+\}", english)) == sorted(re.findall(r"\{\w+\}", spanish)), (
            f"{english!r}: the placeholders differ"
        )
        # Texts are joined with others: the spaces at their edges must survive translation.
        edges = (english[:1].isspace(), english[-1:].isspace())
        assert edges == (spanish[:1].isspace(), spanish[-1:].isspace()), repr(english)


def test_the_shell_texts_are_translated_by_the_app():
    """index.html's texts are keys, and app.js passes each one through t()."""
    texts = _shell_texts()
    assert "Skip to content" in texts  # the parser reads the page
    used = _keys_used()
    assert not [text for text in texts if text not in used], "translate these in app.js"


@pytest.mark.parametrize(
    "source",
    [
        "h('button', {}, 'Dismiss');",
        "h('a', { href: '/x' }, 'file');",
        "toast('Comment deleted.');",
        "h('span', { 'aria-label': `${n} out of 5 stars` });",
        "el.textContent = ok ? 'In my list' : 'Add';",
        "el.title = `My list is unavailable: ${reason}`;",
        "const wait = ` Try again in ${n} seconds`;",
        "return `Request failed (HTTP ${status}).`;",
        "replace(box, t('Log in'), ' to rate this movie.');",
        "field(t('Email'), 'email', { hint: '1–50 characters' });",
    ],
)
def test_the_english_check_catches(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The check above fails on the shapes English used to hide in."""
    fake = tmp_path / "assets"
    fake.mkdir()
    (fake / "i18n.js").write_text("const ES = {\n};\n")
    (fake / "page.js").write_text(source + "\n")
    monkeypatch.setitem(globals(), "ASSETS", fake)
    with pytest.raises(AssertionError, match=r"page\.js:1 ") as caught:
        test_no_english_outside_the_translation_table()
    assert "without t()" in str(caught.value) or "outside t()" in str(caught.value)


def test_the_english_check_lets_the_program_s_own_strings_be():
    source = (
        "import { t } from './i18n.js';\n"
        "h('a', { class: 'btn small ghost', href: `/movies/${id}`, role: 'button' }, t('Go'));\n"
        "el.addEventListener('click', go);\n"
        "if (err.name === 'AbortError') console.warn('Upload cancelled', err);\n"
    )
    literals = []
    for literal, verdict, _node in _literals_of(source):
        literals.append((literal.text, verdict))
    assert ("'Go'", "key") in literals
    assert ("'btn small ghost'", "own") in literals
    assert ("'AbortError'", "own") in literals
    assert ("'Upload cancelled'", "own") in literals


def _literals_of(source: str) -> Iterator[tuple[Literal, str, Node]]:
    root = PARSER.parse(source.encode()).root_node
    for node in _walk(root):
        if node.type in ("string", "template_string"):
            verdict, where = _judge(node)
            yield (
                Literal("inline.js", node.start_point[0] + 1, (node.text or b"").decode(), where),
                verdict,
                node,
            )


# -- the API's error codes ------------------------------------------------------------------

# Codes the app answers by status on purpose: the kit's catch-all for an unlisted status.
BY_STATUS = {"error"}
_SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _constants(node: ast.AST) -> set[str]:
    """The codes an expression can be: a constant, or either side of `a if c else b` / `or`."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) and _SNAKE.match(node.value) else set()
    if isinstance(node, ast.IfExp):
        return _constants(node.body) | _constants(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_constants(value) for value in node.values))
    return set()


def _server_codes() -> set[str]:
    """Every error `code` the services and the kit can answer with, read from their source:
    `code=` arguments, `code = …` class attributes, `ex.error(status, message, code)`,
    `error_response(message, status, code)`, `error_body(message, code)` and the kit's
    code-for-status table."""
    positions = {"error": 2, "error_response": 2, "error_body": 1}
    codes: set[str] = set()
    sources = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("packages/*/src/**/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                index = positions.get(name)
                if index is not None and len(node.args) > index:
                    codes |= _constants(node.args[index])
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        codes |= _constants(keyword.value)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    if any(isinstance(n, ast.Name) and n.id == "code" for n in names):
                        value = node.value
                        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                            value = value.elts[[getattr(n, "id", "") for n in names].index("code")]
                        codes |= _constants(value)
                    if isinstance(target, ast.Name) and target.id == "_CODE_FOR_STATUS":
                        assert isinstance(node.value, ast.Dict)
                        codes |= {v.value for v in node.value.values if isinstance(v, ast.Constant)}
    return codes


def _code_texts() -> set[str]:
    for node in _walk(_tree(ASSETS / "api.js")):
        name = node.child_by_field_name("name")
        if node.type == "variable_declarator" and name is not None and name.text == b"CODE_TEXT":
            table = node.child_by_field_name("value")
            assert table is not None and table.type == "object"
            keys = [pair.child_by_field_name("key") for pair in table.named_children]
            return {(key.text or b"").decode() for key in keys if key is not None}
    raise AssertionError("no `const CODE_TEXT = {…}` in api.js")


def test_every_error_code_of_the_api_has_its_text_in_the_app():
    """errorText() shows a text chosen by the error's code: a code the services answer with
    and the app does not know would fall back to a text by status only."""
    codes = _server_codes()
    # The collector reads every shape the services use.
    assert {"email_taken", "circuit_open", "validation_error", "unreadable_video"} <= codes
    assert {"not_found", "invalid_subtitle", "range_not_satisfiable"} <= codes
    missing = sorted(codes - _code_texts() - BY_STATUS)
    assert not missing, f"add these codes to CODE_TEXT in api.js: {missing}"
