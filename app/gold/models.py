"""Gold and calibration answers, gold scores, annotator standing, calibration attempts and answers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class StandingStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class GoldAnswer(Base):
    """The expected answer of a gold or calibration item (Item.purpose says which).

    Pairwise: `choice` is canonical ("a" = candidate_a, "b" = candidate_b, or "tie"). Likert: `ranges`
    maps an attribute to its acceptable [min, max]; attributes left out accept any rating.
    """

    __tablename__ = "gold_answers"
    __table_args__ = (CheckConstraint("choice IS NULL OR choice IN ('a', 'b', 'tie')", name="choice_values"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    choice: Mapped[str | None] = mapped_column(String(8))
    ranges: Mapped[dict[str, list[int]]] = mapped_column(JSONB, default=dict)
    explanation: Mapped[str] = mapped_column(Text, default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class GoldScore(Base):
    """One annotator's judgement on a gold item, scored. The answer is kept so an edited key rescores."""

    __tablename__ = "gold_scores"
    __table_args__ = (
        UniqueConstraint("item_id", "annotator_id"),
        Index("ix_gold_scores_recent", "project_id", "annotator_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    choice: Mapped[str | None] = mapped_column(String(16))
    ratings: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    correct: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AnnotatorStanding(Base):
    """An annotator's standing in a project; no row means active with nothing special recorded.

    `window_after_id`: gold scores up to this id no longer count toward an automatic pause (set on
    resume, so the misses that caused a pause cannot pause the annotator again at once).
    `extra_attempts` calibration attempts were granted by admins, the last at `extra_attempts_at`.
    """

    __tablename__ = "annotator_standings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[StandingStatus] = mapped_column(String(16), default=StandingStatus.ACTIVE)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime | None]
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    window_after_id: Mapped[int] = mapped_column(default=0)
    extra_attempts: Mapped[int] = mapped_column(default=0)
    extra_attempts_at: Mapped[datetime | None]


class CalibrationAttempt(Base):
    """One qualification session: the calibration items as they were when it started, judged in order.

    `finished_at`, `correct`, `total`, `passed` are set when the last item is answered.
    """

    __tablename__ = "calibration_attempts"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    item_ids: Mapped[list[int]] = mapped_column(JSONB)
    pass_mark: Mapped[float]
    retries_left: Mapped[int] = mapped_column(default=0)  # attempts left should this one fail
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    correct: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    passed: Mapped[bool | None]


class CalibrationAnswer(Base):
    """An answer in a calibration attempt: `choice` canonical (`swapped` as shown), or Likert `ratings`."""

    __tablename__ = "calibration_answers"
    __table_args__ = (
        UniqueConstraint("attempt_id", "item_id"),
        CheckConstraint("strength IS NULL OR strength BETWEEN 1 AND 3", name="strength_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("calibration_attempts.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    choice: Mapped[str | None] = mapped_column(String(16))
    strength: Mapped[int | None] = mapped_column(SmallInteger)
    swapped: Mapped[bool]
    ratings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    correct: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
