"""The OpenAPI document as the app really answers: errors are `{"detail": str, "errors": [...]}`.

FastAPI documents every 422 with its own HTTPValidationError (`detail` as a list), but the handlers in
app/web/handlers.py answer every error, validation included, with one shape. The document is generated
once, then this shape replaces FastAPI's, so clients and schemathesis see what they will get.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what went wrong, for people"},
        "errors": {
            "type": "array",
            "description": "one entry per field (or import row) at fault",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "additionalProperties": True,
            },
        },
    },
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
                schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
