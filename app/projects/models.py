from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base


class Mode(enum.StrEnum):
    PAIRWISE = "pairwise"
    LIKERT = "likert"


class ItemKind(enum.StrEnum):
    PAIR = "pair"
    SINGLE = "single"


class CandidateSource(enum.StrEnum):
    MODEL = "model"
    IMPORT = "import"
    EDIT = "edit"


class ItemPurpose(enum.StrEnum):
    """Regular items are the work; gold items hide among them with a known answer; calibration items are
    judged only in qualification sessions. Exports and agreement use regular items unless asked otherwise."""

    REGULAR = "regular"
    GOLD = "gold"
    CALIBRATION = "calibration"


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("overlap_k BETWEEN 1 AND 50", name="overlap_k_range"),
        CheckConstraint("lease_minutes BETWEEN 1 AND 1440", name="lease_minutes_range"),
        CheckConstraint("candidates_per_prompt BETWEEN 1 AND 16", name="candidates_range"),
        CheckConstraint("gold_rate BETWEEN 0 AND 1 AND repeat_rate BETWEEN 0 AND 1 "
                        "AND gold_rate + repeat_rate <= 1", name="quality_rates"),
        CheckConstraint("gold_bar BETWEEN 0 AND 1 AND calibration_pass BETWEEN 0 AND 1", name="quality_bars"),
        CheckConstraint("gold_window BETWEEN 1 AND 1000 AND gold_min BETWEEN 1 AND 1000 "
                        "AND calibration_retries BETWEEN 0 AND 100", name="quality_counts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[Mode] = mapped_column(String(16))
    attributes: Mapped[list[dict[str, str]]] = mapped_column(JSONB, default=list)
    overlap_k: Mapped[int] = mapped_column(default=2)
    lease_minutes: Mapped[int] = mapped_column(default=30)
    candidates_per_prompt: Mapped[int] = mapped_column(default=2)
    generation: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Quality control (app/gold): the share of claims that serve a gold item or a repeat, the gold
    # accuracy bar over the last `gold_window` gold items (applied after `gold_min` of them), and the
    # calibration pass mark with the retries allowed after a failed attempt.
    gold_rate: Mapped[float] = mapped_column(default=0.1, server_default="0.1")
    gold_bar: Mapped[float] = mapped_column(default=0.7, server_default="0.7")
    gold_window: Mapped[int] = mapped_column(default=10, server_default="10")
    gold_min: Mapped[int] = mapped_column(default=5, server_default="5")
    repeat_rate: Mapped[float] = mapped_column(default=0.05, server_default="0.05")
    calibration_pass: Mapped[float] = mapped_column(default=0.8, server_default="0.8")
    calibration_retries: Mapped[int] = mapped_column(default=2, server_default="2")
    # Active learning: hand out the pairs the latest reward model is least sure of (smallest |Δr|) first.
    uncertain_first: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    @property
    def lease_ttl(self) -> timedelta:
        return timedelta(minutes=self.lease_minutes)

    @property
    def attribute_names(self) -> list[str]:
        return [a["name"] for a in self.attributes]


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Prompt(Base):
    """A conversation to answer: `messages` is a chat list ({role, content}), a system turn first if any."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("project_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    messages: Mapped[list[dict[str, str]]] = mapped_column(JSONB)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("prompt_id", "config_key", "sample_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[CandidateSource] = mapped_column(String(16))
    config_key: Mapped[str] = mapped_column(String(64), default="default")
    sample_index: Mapped[int] = mapped_column(default=0)
    model: Mapped[str] = mapped_column(String(300), default="")
    revision: Mapped[str] = mapped_column(String(120), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    # A direct edit (source EDIT): the annotator who rewrote `parent_id` into this candidate.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    # quality flags set at generation (long, empty, whitespace, repetitive): kept from items unless the
    # project's generation settings say include_flagged
    flags: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    # The latest reward model's score of (prompt, text) and which model gave it (app/training scoring).
    reward_score: Mapped[float | None]
    reward_model: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Item(Base):
    """What an annotator judges: a pair of candidates (pairwise) or one candidate (Likert).

    `open_slots` counts the leases still to hand out: k at creation, minus live and completed leases.
    """

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("candidate_a_id", "candidate_b_id"),
        CheckConstraint("open_slots >= 0", name="open_slots_nonnegative"),
        CheckConstraint("purpose IN ('regular', 'gold', 'calibration')", name="purpose_values"),
        Index("ix_items_open", "project_id", "id", postgresql_where=text("open_slots > 0")),
        Index("ix_items_special", "project_id", "purpose", "id",
              postgresql_where=text("purpose <> 'regular'")),
        # NULLs are distinct in the unique pair constraint: this keeps one single item per candidate.
        Index("uq_items_single", "candidate_a_id", unique=True,
              postgresql_where=text("candidate_b_id IS NULL")),
        # Agreement leaves gold and calibration items out: it looks up their (few) ids by project.
        Index("ix_items_not_regular", "project_id", postgresql_where=text("purpose <> 'regular'")),
        # "Uncertain first": open pairs by |Δr| (unscored ones last, NULLs sort last in ascending order).
        Index("ix_items_uncertain", "project_id", "reward_gap", "id",
              postgresql_where=text("open_slots > 0")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ItemKind] = mapped_column(String(16))
    candidate_a_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    candidate_b_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    open_slots: Mapped[int]
    judgement_count: Mapped[int] = mapped_column(default=0)
    reward_gap: Mapped[float | None]  # |r(a) - r(b)| under the latest reward model; NULL until scored
    purpose: Mapped[ItemPurpose] = mapped_column(String(16), default=ItemPurpose.REGULAR,
                                                 server_default=ItemPurpose.REGULAR.value)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    prompt: Mapped[Prompt] = relationship(lazy="raise")
    candidate_a: Mapped[Candidate] = relationship(foreign_keys=[candidate_a_id], lazy="raise")
    candidate_b: Mapped[Candidate | None] = relationship(foreign_keys=[candidate_b_id], lazy="raise")
