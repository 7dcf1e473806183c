"""The admin dashboard's figures: progress, throughput, agreement, annotator standing, flagged judgements and
the items with most disagreement, from one read of the project's judgements (a service module)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.agreement import report
from app.agreement import service as agreement_service
from app.agreement.schemas import AgreementOut, AnnotatorsOut, StandingQuery
from app.agreement.service import ExtraColumns, Filters, Progress, Source
from app.agreement.snapshot import SnapshotCache
from app.annotation.models import Judgement
from app.projects.models import Item, Project, Prompt

PROMPT_EXCERPT = 200  # characters of a prompt shown beside a flagged or disputed item


@dataclass(frozen=True)
class FlaggedJudgement:
    judgement_id: int
    item_id: int
    annotator: str
    flags: list[str]
    rationale: str
    created_at: datetime
    prompt: str  # the start of the item's last prompt message


@dataclass(frozen=True)
class DisputedItem:
    item_id: int
    score: float
    votes: int
    summary: str
    prompt: str


@dataclass(frozen=True)
class Dashboard:
    progress: Progress
    throughput: report.Throughput
    agreement: AgreementOut
    annotators: AnnotatorsOut
    flagged_total: int
    flagged: list[FlaggedJudgement]
    disputed: list[DisputedItem]
    guideline_versions: list[int]  # every version the project's judgements were made under (filter choices)


def dashboard(session: Session, *, project: Project, query: StandingQuery,
              extra_columns: ExtraColumns | None = None, cache: SnapshotCache | None = None,
              n_boot: int = agreement_service.N_BOOT, limit: int = 10) -> Dashboard:
    """Everything the admin dashboard shows, under the query's filters."""
    filters = Filters.of(query)
    source = agreement_service.read(session, project=project, filters=filters, cache=cache)
    agreement = agreement_service.agreement_of(source, bucket=query.bucket, n_boot=n_boot)
    annotators = agreement_service.standings_of(session, source, fast_seconds=query.fast_seconds,
                                                sort=query.sort, order=query.order,
                                                extra_columns=extra_columns)
    disputed = source.remember("disputed", limit, lambda: report.most_disputed(
        source.selection().counted, source.selection().scales, limit=limit))
    prompts = _prompts(session, [d.item_id for d in disputed])
    flagged_total, flagged = _flagged(session, project_id=project.id, filters=filters, limit=2 * limit)
    return Dashboard(
        progress=agreement_service.progress(source), throughput=_throughput(source), agreement=agreement,
        annotators=annotators, flagged_total=flagged_total, flagged=flagged,
        disputed=[DisputedItem(d.item_id, d.score, d.votes, d.summary, prompts.get(d.item_id, ""))
                  for d in disputed],
        guideline_versions=_versions(source))


def _versions(source: Source) -> list[int]:
    guideline = source.data.guideline
    return source.remember("versions", None, lambda: [int(v) for v in np.unique(guideline[guideline >= 0])])


def _throughput(source: Source) -> report.Throughput:
    return source.remember("throughput", None, lambda: report.throughput(source.selection().everything.at))


def _prompt_excerpt() -> ColumnElement[str]:
    return func.left(Prompt.messages.op("->")(-1).op("->>")("content"), PROMPT_EXCERPT)


def _prompts(session: Session, item_ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(Item.id, _prompt_excerpt()).join(Prompt, Prompt.id == Item.prompt_id)
                           .where(Item.id.in_(item_ids)))
    return {item_id: text or "" for item_id, text in rows}


def _flagged(session: Session, *, project_id: int, filters: Filters, limit: int
             ) -> tuple[int, list[FlaggedJudgement]]:
    """How many judgements carry flags, and the newest `limit` of them (ix_judgements_flagged)."""
    conditions = [Judgement.project_id == project_id, Judgement.flags.op("<>")(literal_column("'[]'::jsonb"))]
    start, end = filters.bounds()
    if filters.guideline_version is not None:
        conditions.append(Judgement.guideline_version_id == filters.guideline_version)
    if start is not None:
        conditions.append(Judgement.created_at >= start)
    if end is not None:
        conditions.append(Judgement.created_at < end)
    total = session.scalar(select(func.count()).select_from(Judgement).where(*conditions)) or 0
    rows = session.execute(
        select(Judgement.id, Judgement.item_id, User.username, Judgement.flags, Judgement.rationale,
               Judgement.created_at, _prompt_excerpt())
        .join(User, User.id == Judgement.annotator_id).join(Item, Item.id == Judgement.item_id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .where(*conditions).order_by(Judgement.id.desc()).limit(limit))
    return total, [FlaggedJudgement(row[0], row[1], row[2], list(row[3]), row[4], row[5], row[6] or "")
                   for row in rows]
