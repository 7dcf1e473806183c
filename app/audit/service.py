"""Audit: an append-only record of who changed projects, roles and data, and every export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, column, func, select, table
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent

PAGE_SIZE = 50
# audit sits below accounts (every domain records into it), so it names the users table the way its
# foreign key does, instead of importing the accounts model.
_users = table("users", column("id"), column("username"))
ChangeKind = Literal["added", "removed", "changed", "same"]


@dataclass(frozen=True)
class Change:
    """One key of a before/after pair, values as compact JSON text (None: absent on that side)."""

    key: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> ChangeKind:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed" if self.before != self.after else "same"


@dataclass(frozen=True)
class Entry:
    event: AuditEvent
    actor: str | None  # the actor's username; None for the command line or a deleted user
    changes: list[Change]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    project_id: int | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        project_id=project_id,
        target=target[:120],
        before=before,
        after=after,
    )
    session.add(event)
    session.flush()
    return event


def recent(session: Session, *, project_id: int | None = None, limit: int = 100) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    return list(session.scalars(query))


def _filtered(query: Select[Any], project_id: int | None, action: str | None) -> Select[Any]:
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return query


def page(session: Session, *, project_id: int | None = None, action: str | None = None, number: int = 1,
         per_page: int = PAGE_SIZE) -> Page:
    """Events newest first, `per_page` at a time (page `number`, from 1), with who did them and what
    changed. `project_id` None: every project and the global events (roles, users)."""
    total = session.scalar(_filtered(select(func.count(AuditEvent.id)), project_id, action)) or 0
    query = (_filtered(select(AuditEvent, _users.c.username), project_id, action)
             .outerjoin(_users, _users.c.id == AuditEvent.actor_id)
             .order_by(AuditEvent.id.desc()).offset((number - 1) * per_page).limit(per_page))
    entries = [Entry(event, username, changes(event.before, event.after))
               for event, username in session.execute(query)]
    return Page(entries=entries, page=number, per_page=per_page, total=total)


def actions(session: Session, *, project_id: int | None = None) -> list[str]:
    """The actions on record (for the filter), alphabetically."""
    query = _filtered(select(AuditEvent.action).distinct(), project_id, None).order_by(AuditEvent.action)
    return list(session.scalars(query))


def _flatten(values: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """Before and after, key by key (nested objects as dotted keys), in key order. Pure."""
    old, new = _flatten(before), _flatten(after)
    return [Change(key, _text(old[key]) if key in old else None, _text(new[key]) if key in new else None)
            for key in sorted(old.keys() | new.keys())]
