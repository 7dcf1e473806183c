from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

# Append-only in the database too: any UPDATE or DELETE of a row is refused (TRUNCATE, an operator's
# deliberate act, is not a row trigger). Autogenerate cannot see triggers: migrations/env.py copies each
# table's pairs in Base.metadata.info["ddl"] (upgrade SQL, downgrade SQL) into the generated migration.
# A consequence: a user who has audit events cannot be deleted (ON DELETE SET NULL would update them);
# prefstudio disables users instead. No ':' or '%' in this SQL (bind syntax).
APPEND_ONLY_FUNCTION = """CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
    MESSAGE = 'audit_events is append-only: ' || TG_OP || ' refused';
END $$"""
APPEND_ONLY_TRIGGER = (
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
)
APPEND_ONLY_DDL = [
    (APPEND_ONLY_FUNCTION, "DROP FUNCTION IF EXISTS audit_events_append_only()"),
    (APPEND_ONLY_TRIGGER, "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events"),
]


class AuditEvent(Base):
    """Append-only: who changed what, when, before and after."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(index=True)
    target: Mapped[str] = mapped_column(String(120), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


Base.metadata.info.setdefault("ddl", {})[AuditEvent.__tablename__] = APPEND_ONLY_DDL
