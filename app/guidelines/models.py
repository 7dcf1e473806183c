"""Guideline versions (markdown; a draft until published, frozen after) and annotators' acknowledgements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, UniqueConstraint, false, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db import Base

# The database refuses any change to a published version's content, whatever code runs the UPDATE.
# Autogenerate cannot see triggers: migrations/env.py copies each table's pairs in Base.metadata.info["ddl"]
# (upgrade SQL, downgrade SQL) into the generated migration. No ':' or '%' in this SQL (bind syntax).
FREEZE_FUNCTION = """CREATE FUNCTION guideline_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.published_at IS NOT NULL AND
     (NEW.project_id, NEW.number, NEW.body, NEW.summary, NEW.requires_recalibration, NEW.published_at)
     IS DISTINCT FROM
     (OLD.project_id, OLD.number, OLD.body, OLD.summary, OLD.requires_recalibration, OLD.published_at) THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation',
      MESSAGE = 'guideline version ' || OLD.id || ' is published and frozen';
  END IF;
  RETURN NEW;
END $$"""
FREEZE_TRIGGER = (
    "CREATE TRIGGER guideline_versions_frozen BEFORE UPDATE ON guideline_versions "
    "FOR EACH ROW EXECUTE FUNCTION guideline_versions_frozen()"
)
FREEZE_DDL = [
    (FREEZE_FUNCTION, "DROP FUNCTION IF EXISTS guideline_versions_frozen()"),
    (FREEZE_TRIGGER, "DROP TRIGGER IF EXISTS guideline_versions_frozen ON guideline_versions"),
]


class GuidelineVersion(Base):
    """One version of a project's guidelines. A draft (number and published_at NULL) can be edited; a
    project has at most one. Publishing numbers it (1, 2, ...) and freezes it; the newest published is
    the active version."""

    __tablename__ = "guideline_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        Index("uq_guideline_versions_one_draft", "project_id", unique=True,
              postgresql_where=text("published_at IS NULL")),
        CheckConstraint("(number IS NULL) = (published_at IS NULL)", name="numbered_when_published"),
        CheckConstraint("published_at IS NULL OR btrim(summary) <> ''", name="published_has_summary"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[int | None]
    body: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    # Publishing with this set sends every annotator back to calibration (gold's gate reads it).
    requires_recalibration: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    published_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[published_by_id])

    @property
    def is_draft(self) -> bool:
        return self.published_at is None

    @property
    def label(self) -> str:
        return "draft" if self.number is None else f"v{self.number}"


class GuidelineAcknowledgement(Base):
    """An annotator has read a published version; the workspace holds back their next item until they do."""

    __tablename__ = "guideline_acknowledgements"
    __table_args__ = (UniqueConstraint("version_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("guideline_versions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    acknowledged_at: Mapped[datetime] = mapped_column(server_default=func.now())


Base.metadata.info.setdefault("ddl", {})[GuidelineVersion.__tablename__] = FREEZE_DDL
