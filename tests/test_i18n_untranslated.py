"""No user-visible string outside the catalogue (issue 14): page templates and scripts, and
the builders of explanations, notifications and daily summaries. Every key they name exists."""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

from devices.i18n import catalogue

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "dashboard_api" / "static"
BUILDERS = [
    ROOT / "alerts" / "notify" / "messages.py",
    ROOT / "alerts" / "notify" / "summary.py",
    ROOT / "devices" / "i18n" / "explain.py",
    ROOT / "dashboard_api" / "wall.py",
    ROOT / "alerts" / "care" / "messages.py",
]
MARKER = re.compile(r"\{\{[a-zA-Z0-9_.-]+\}\}")
HAN = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")
WORDS = re.compile(r"[A-Za-z]{2,}[,.;:!?]? +[A-Za-z]{2,}")
VISIBLE_ATTRS = {"title", "aria-label", "placeholder", "alt", "value"}
# string literals in the scripts that are not words for people: CSS classes and selectors,
# headers, Intl options, the SVG namespace, attribute names
TECHNICAL = re.compile(
    r"^(\.?[a-z][\w-]*(?:[ .][a-z][\w-]*)*"  # class lists, selectors
    r"|.*\$\{.*|Bearer |en-GB|http://www\.w3\.org/2000/svg|[\w-]+/[\w-]+(; ?.*)?)$"
)
KEY_CALL = re.compile(r"\b(?:t|tOr)\(\s*\"([a-zA-Z0-9_.-]*[a-zA-Z0-9_-])\"")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            visible = name in VISIBLE_ATTRS and value and tag != "option"
            if visible and value and MARKER.sub("", value).strip(" ·") and not value.isdigit():
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and MARKER.sub("", data).strip(" ·\n"):
            self.found.append(data.strip())


def test_page_templates_hold_only_catalogue_markers() -> None:
    bad = {}
    for page in sorted(STATIC.glob("*.html")):
        p = _Text()
        p.feed(page.read_text(encoding="utf-8"))
        if p.found:
            bad[page.name] = p.found
    assert bad == {}, bad


def _js_strings(text: str) -> list[str]:
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    return [m.group(2) for m in re.finditer(r"([\"'`])((?:\\.|(?!\1).)*)\1", text)]


def test_page_scripts_say_nothing_outside_the_catalogue() -> None:
    bad = {}
    for script in sorted(STATIC.glob("*.js")):
        words = [
            s
            for s in _js_strings(script.read_text(encoding="utf-8"))
            if HAN.search(s) or (WORDS.search(s) and not TECHNICAL.match(s))
        ]
        if words:
            bad[script.name] = words
    assert bad == {}, bad


def test_every_key_the_pages_name_exists() -> None:
    keys = set(catalogue("zh-CN"))
    used = {
        m.group(1)
        for f in [*STATIC.glob("*.js"), *STATIC.glob("*.html")]
        for m in [
            *KEY_CALL.finditer(f.read_text()),
            *re.finditer(r"\{\{([a-zA-Z0-9_.-]+)\}\}", f.read_text()),
        ]
    } - {"lang"}
    assert used - keys == set()
    assert len(used) > 100  # the scan found the pages' words


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_explanation_and_notification_builders_take_words_from_the_catalogue() -> None:
    bad = [
        f"{path.name}:{line}: {text!r}"
        for path in BUILDERS
        for line, text in _literals(path)
        if (HAN.search(text) or WORDS.search(text))
        and not re.match(r"\s*(SELECT|UNION|WHERE|AND|FROM|LEFT|JOIN|ORDER|\()", text)
        and "%(" not in text
    ]
    assert bad == []


def test_every_key_the_builders_name_exists() -> None:
    keys = set(catalogue("en"))
    used = {
        text
        for path in BUILDERS
        for _, text in _literals(path)
        if re.fullmatch(r"(explain|notify|summary|handling|fmt|dur|error)\.[a-z_.]+", text)
    }
    assert used
    assert used - keys == set()
