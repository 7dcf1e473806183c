from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint, false, func, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.projects.models import Item


class Lease(Base):
    """An item handed to one annotator until `expires_at`; unique per (item, annotator): never twice.

    A judged lease gets `completed_at`. A skipped lease gets `completed_at` and `skipped`: its slot goes
    back to the item, and the row stays so that the same annotator is never offered the item again.
    An expired lease that was never completed is deleted (its slot goes back too).
    """

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("item_id", "annotator_id", "is_repeat"),
        Index("ix_leases_live", "annotator_id", "expires_at", postgresql_where=text("completed_at IS NULL")),
        Index("ix_leases_expiring", "project_id", "expires_at",
              postgresql_where=text("completed_at IS NULL")),
        # An annotator's judged leases: how many (the gold/repeat draw), and which to repeat.
        Index("ix_leases_judged", "project_id", "annotator_id", "id",
              postgresql_where=text("completed_at IS NOT NULL AND NOT skipped")),
        Index("ix_leases_repeats", "annotator_id", "item_id", postgresql_where=text("is_repeat")),
        # "Never leased by this annotator": the claim's anti-join probes the annotator's own leases
        # instead of scanning every lease of the project (a seq scan of 5M rows at 1M items).
        Index("ix_leases_annotator_item", "annotator_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    swapped: Mapped[bool]
    skipped: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A repeat shows an item the annotator already judged again (sides swapped) to measure self-consistency.
    is_repeat: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Only a regular, first-time lease takes one of the item's k slots; gold items are shared by every
    # annotator and repeats are extra, so neither moves open_slots nor judgement_count.
    takes_slot: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    item: Mapped[Item] = relationship(lazy="raise")
