"""Render errors as a JSON body under /api, an htmx fragment, or a full page."""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.errors import DomainError, NotAuthenticated
from app.web import htmx
from app.web.templating import render

log = logging.getLogger(__name__)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _current_path(request: Request) -> str:
    """The path of the page an htmx request came from (same origin only), else the request's own."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if current.path.startswith("/") and current.netloc in ("", request.url.netloc):
        return current.path
    return request.url.path


def _respond(
    request: Request, status: int, title: str, message: str, errors: list[dict[str, str]] | None = None
) -> Response:
    if _is_api(request):
        body: dict[str, object] = {"detail": message}
        if errors:
            body["errors"] = errors
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)
    context = {"title": title, "message": message, "errors": errors or [], "status": status}
    if htmx.is_htmx(request):
        response = render(request, "_error.html", context, status_code=status)
        return htmx.retarget(response, "#flash")
    return render(request, "error.html", context, status_code=status)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, NotAuthenticated) and not _is_api(request):
        if request.method == "GET":
            return htmx.redirect(request, f"/login?next={quote(request.url.path)}")
        if htmx.is_htmx(request):  # e.g. a submit after the session ended: sign in, then back to the page
            return htmx.redirect(request, f"/login?next={quote(_current_path(request))}")
    errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
    if isinstance(exc.details, list):
        errors = exc.details
    return _respond(request, exc.status_code, exc.title, exc.message, errors)


def _field_path(loc: tuple[object, ...] | list[object]) -> list[object]:
    """The field's path without where it came from: ("body", "body") is the field named "body"."""
    parts = list(loc)
    return parts[1:] if parts and parts[0] in ("body", "query", "path", "header", "cookie") else parts


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in _field_path(e["loc"])),
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    return _respond(request, 422, "Invalid input", "some fields are not valid", errors)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return _respond(request, exc.status_code, "Error", str(exc.detail))


async def database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    response = _respond(
        request,
        503,
        "Service unavailable",
        "the database is not reachable right now; nothing was saved, please retry shortly",
    )
    response.headers["Retry-After"] = "5"
    return response


def _too_large(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and int(value) >= 2**31


async def out_of_range(request: Request, exc: Exception) -> Response:
    """A number Postgres cannot hold (ids are 32-bit): no such object in the path, else invalid input."""
    log.info("out-of-range value: %s", exc)
    if any(_too_large(v) for v in request.path_params.values()):
        return _respond(request, 404, "Not found", "no such object: the id is out of range")
    return _respond(request, 422, "Invalid input", "a number in the request is out of range")


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(DataError, out_of_range)
    # The same errors from psycopg itself: the annotation API's lean path runs on the DBAPI connection.
    app.add_exception_handler(psycopg.OperationalError, database_down)
    app.add_exception_handler(psycopg.DataError, out_of_range)
