"""Export request parameters."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.export.formats import ExportFormat


class ExportQuery(BaseModel):
    """`?format=trl|raw`: TRL preference pairs (one per decided item) or raw judgements (one per vote)."""

    format: ExportFormat = Field(default=ExportFormat.TRL, description="trl or raw; see docs/formats.md")
