from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base


class Choice(enum.StrEnum):
    """In canonical order (candidate_a vs candidate_b), after undoing the side swap."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Judgement(Base):
    """One annotator's submission on one item: a pairwise choice, or Likert ratings (child rows)."""

    __tablename__ = "judgements"
    __table_args__ = (
        UniqueConstraint("item_id", "annotator_id", "is_repeat"),
        UniqueConstraint("idempotency_key"),
        CheckConstraint("strength IS NULL OR strength BETWEEN 1 AND 3", name="strength_range"),
        CheckConstraint("choice IS NULL OR choice IN ('a', 'b', 'tie', 'both_bad')", name="choice_values"),
        # The dashboard lists a project's flagged judgements without scanning all of them.
        Index("ix_judgements_flagged", "project_id", "id", postgresql_where=text("flags <> '[]'::jsonb")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    lease_id: Mapped[int] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"), unique=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    choice: Mapped[Choice | None] = mapped_column(String(16))
    strength: Mapped[int | None] = mapped_column(SmallInteger)
    swapped: Mapped[bool] = mapped_column(default=False)
    rationale: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[list[str]] = mapped_column(JSONB, default=list)
    seconds: Mapped[float | None]
    idempotency_key: Mapped[str] = mapped_column(String(64))
    # Repeats measure self-consistency only: never counted in exports, agreement or item completion.
    is_repeat: Mapped[bool] = mapped_column(default=False, server_default=false())
    guideline_version_id: Mapped[int | None] = mapped_column(ForeignKey("guideline_versions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    ratings: Mapped[list[Rating]] = relationship(lazy="raise", back_populates="judgement")


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("judgement_id", "attribute"),
        CheckConstraint("value BETWEEN 1 AND 7", name="likert_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    judgement_id: Mapped[int] = mapped_column(ForeignKey("judgements.id", ondelete="CASCADE"))
    attribute: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(SmallInteger)

    judgement: Mapped[Judgement] = relationship(lazy="raise", back_populates="ratings")
