"""Markdown from models, prompts and guidelines, rendered to HTML that is safe to embed in a page.

Two layers, either of which would stop the usual payloads alone:

1. markdown-it-py with ``html=False``: raw HTML in the source is escaped as text, and its link
   validator refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` destinations.
2. nh3 (ammonia) with an explicit allow-list of tags, attributes and URL schemes, so that a bug or a
   config change in layer 1 still cannot put a script, an event handler or an ``hx-*`` attribute on
   the page.

Images are not rendered: ``![alt](url)`` shows as ``!`` followed by a plain link, so model output
cannot load tracking pixels or third-party content when an annotator opens an item, and the
annotator still sees that the response contained an image.

Both the parser and the cleaner are built once from configuration only; nothing user-specific is
cached, and each render is a pure function of its text.
"""

import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
})
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "code": frozenset({"class"}),
    "ol": frozenset({"start"}),
}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener noreferrer"
# Tags whose content is dropped with the tag, not kept as text.
_DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed",
                      "textarea", "title", "svg", "math"}
LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")

_parser = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable(["table", "strikethrough"])
    .disable("image")
)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Keep a code block's class only when it is exactly one ``language-xxx`` name."""
    if tag == "code" and attribute == "class":
        return value if LANGUAGE_CLASS.fullmatch(value) else None
    if tag == "ol" and attribute == "start":
        return value if value.isdigit() and len(value) <= 9 else None
    return value


_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel=LINK_REL,
    generic_attribute_prefixes=set(),
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # Relative links would point into prefstudio itself; model output has no business doing that.
    url_relative="deny",
)


def sanitize_html(html: str) -> str:
    """HTML reduced to the allow-list above. A plain str: only render_markdown marks HTML safe."""
    return _cleaner.clean(html)


def render_markdown(text: str) -> Markup:
    """Untrusted markdown (model output, prompts, guidelines) as sanitized, safe-to-embed HTML."""
    html = sanitize_html(_parser.render(text))
    # The one place in prefstudio that marks HTML as safe: `html` has just been through the
    # allow-list cleaner above. Everything else reaches templates as text and is autoescaped.
    return Markup(html)
