from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class TrainingStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TrainingRun(Base):
    """A reward model trained by the worker on an export of the project; its files live in `out_dir`."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    status: Mapped[TrainingStatus] = mapped_column(String(16), default=TrainingStatus.QUEUED)
    export_format: Mapped[str] = mapped_column(String(32), default="trl")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # TrainConfig fields
    out_dir: Mapped[str] = mapped_column(String(500), default="")
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # step, total, loss
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
