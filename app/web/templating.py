"""Jinja2 environment and the two ways routes render: a page, or a page-or-fragment for htmx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.web import htmx
from app.web.csrf import request_token
from app.web.markdown import render_markdown

ROOT = Path(__file__).resolve().parent.parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.filters["markdown"] = render_markdown
templates.env.globals["htmx_version"] = next(
    (p.name for p in (ROOT / "static" / "vendor").glob("htmx-*.min.js")), "htmx.min.js"
)


def _context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    return {"user": getattr(request.state, "viewer", None), "csrf_token": request_token(request), **context}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, _context(request, context or {}), status_code=status_code
    )


def render_page_or_fragment(
    request: Request, *, page: str, fragment: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    name = fragment if htmx.is_htmx(request) else page
    response = render(request, name, context, status_code)
    htmx.vary_on_htmx(response)
    return response
