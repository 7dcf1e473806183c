"""Audit events as JSON: who, what, when, and before/after with a key-by-key comparison."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.audit import service as audit_service


class ChangeOut(BaseModel):
    key: str = Field(examples=["overlap_k"])
    before: str | None = Field(description="the value as JSON text; null: the key was absent", examples=["2"])
    after: str | None = Field(examples=["3"])
    kind: audit_service.ChangeKind


class AuditEventOut(BaseModel):
    id: int
    action: str = Field(examples=["project.update"])
    actor_id: int | None
    actor: str | None = Field(description="the actor's username; null: the command line")
    project_id: int | None
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changes: list[ChangeOut]
    created_at: datetime

    @classmethod
    def of(cls, entry: audit_service.Entry) -> AuditEventOut:
        event = entry.event
        return cls(id=event.id, action=event.action, actor_id=event.actor_id, actor=entry.actor,
                   project_id=event.project_id, target=event.target, before=event.before, after=event.after,
                   changes=[ChangeOut(key=c.key, before=c.before, after=c.after, kind=c.kind)
                            for c in entry.changes],
                   created_at=event.created_at)


class AuditPageOut(BaseModel):
    """Newest first."""

    events: list[AuditEventOut]
    page: int
    per_page: int
    total: int
    pages: int

    @classmethod
    def of(cls, page: audit_service.Page) -> AuditPageOut:
        return cls(events=[AuditEventOut.of(e) for e in page.entries], page=page.page,
                   per_page=page.per_page, total=page.total, pages=page.pages)
