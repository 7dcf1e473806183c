from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class GenerationRun(Base):
    """One request to fill a project's prompts with candidates; its job does the work."""

    __tablename__ = "generation_runs"
    __table_args__ = (  # at most one active run per project
        Index("ix_generation_runs_one_active", "project_id", unique=True,
              postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    status: Mapped[RunStatus] = mapped_column(String(16), default=RunStatus.QUEUED)
    model: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    total_prompts: Mapped[int] = mapped_column(default=0)
    done_prompts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]  # when the model was loaded and generation began
    finished_at: Mapped[datetime | None]
