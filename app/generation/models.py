from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


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
    # units of work: one prompt under one config (a project with two configs counts each prompt twice)
    total_prompts: Mapped[int] = mapped_column(default=0)
    done_prompts: Mapped[int] = mapped_column(default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # generated so far
    # prompts the backend failed on, skipped for this run: [{"prompt_id", "config", "reason"}]
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    error: Mapped[str | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]  # when the model was loaded and generation began
    finished_at: Mapped[datetime | None]



class BackendKind(enum.StrEnum):
    TRANSFORMERS = "transformers"
    OPENAI = "openai"  # any OpenAI-compatible chat-completions server


class GenerationConfig(Base):
    """One way of answering a project's prompts: a model, its backend and decoding parameters.

    `key` names the config's candidates (Candidate.config_key); pairs are built across configs and the
    arena ranks them. A project without configs uses its `generation` settings under the key "default".
    """

    __tablename__ = "generation_configs"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    backend: Mapped[BackendKind] = mapped_column(String(16), default=BackendKind.TRANSFORMERS)
    model: Mapped[str] = mapped_column(String(300), default="")
    # decoding: max_new_tokens, temperature, top_p, seed, stop, system_prompt
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # remote backends only: base_url, api_key_env, timeout_seconds, max_retries, concurrency
    remote: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
