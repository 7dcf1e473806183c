from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import app.models  # noqa: F401  (registers every table and its DDL)
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.db import Base
from tests.factories import make_user_without_password

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def test_changes_compare_before_and_after_key_by_key() -> None:
    changes = audit_service.changes(
        {"overlap_k": 2, "name": "a", "generation": {"seed": 1, "top_p": 0.9}, "gone": True},
        {"overlap_k": 3, "name": "a", "generation": {"seed": 2, "top_p": 0.9}, "new": ["x", "<b>"]},
    )
    assert [(c.key, c.before, c.after, c.kind) for c in changes] == [
        ("generation.seed", "1", "2", "changed"),
        ("generation.top_p", "0.9", "0.9", "same"),
        ("gone", "true", None, "removed"),
        ("name", '"a"', '"a"', "same"),
        ("new", None, '["x", "<b>"]', "added"),
        ("overlap_k", "2", "3", "changed"),
    ]
    assert audit_service.changes(None, None) == []
    assert [c.kind for c in audit_service.changes(None, {"role": "admin"})] == ["added"]


def test_pages_are_newest_first_and_filter_by_project_and_action(db: Session) -> None:
    actor = make_user_without_password(db)
    for n in range(5):
        audit_service.record(
            db, actor_id=actor.id, action="a.one" if n % 2 else "a.two", project_id=7, target=f"event {n}"
        )
    audit_service.record(db, actor_id=None, action="a.one", project_id=8, target="elsewhere")
    first = audit_service.page(db, project_id=7, number=1, per_page=2)
    assert [e.event.target for e in first.entries] == ["event 4", "event 3"]
    assert (first.total, first.pages) == (5, 3) and first.entries[0].actor == actor.username
    last = audit_service.page(db, project_id=7, number=3, per_page=2)
    assert [e.event.target for e in last.entries] == ["event 0"]
    only = audit_service.page(db, project_id=7, action="a.one")
    assert [e.event.target for e in only.entries] == ["event 3", "event 1"]
    everywhere = audit_service.page(db, action="a.one")
    assert everywhere.entries[0].event.target == "elsewhere" and everywhere.entries[0].actor is None
    assert audit_service.actions(db, project_id=8) == ["a.one"]


def test_the_database_refuses_to_update_or_delete_audit_events(db: Session) -> None:
    event = audit_service.record(db, actor_id=None, action="export", target="x", after={"rows": 1})
    with pytest.raises(IntegrityError, match="append-only: UPDATE refused"), db.begin_nested():
        db.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(action="nothing to see"))
    with pytest.raises(IntegrityError, match="append-only: DELETE refused"), db.begin_nested():
        db.execute(delete(AuditEvent).where(AuditEvent.id == event.id))
    db.expire_all()
    assert db.scalar(select(AuditEvent.action).where(AuditEvent.id == event.id)) == "export"
    assert db.scalar(select(func.count(AuditEvent.id))) == 1


def test_every_trigger_the_models_register_is_in_the_migration() -> None:
    """migrations/env.py copies Base.metadata.info["ddl"] into a regenerated migration; this catches a
    migration written or edited without it."""
    source = "\n".join(p.read_text() for p in MIGRATIONS.glob("*.py"))
    ddl = Base.metadata.info["ddl"]
    assert {"audit_events", "guideline_versions"} <= ddl.keys()
    for pairs in ddl.values():
        for up, down in pairs:
            assert repr(up) in source and repr(down) in source
