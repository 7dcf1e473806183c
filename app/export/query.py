"""The export's queries: which judgements count (the filters, as a Scope) and the rows each format reads.

Every query here is streamed through a server-side cursor by app/export/service.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, Text, cast, exists, false, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ClauseElement

from app.annotation.models import Judgement, Rating
from app.errors import Invalid
from app.export.aggregate import CHOICES, DEFAULT_STRENGTH
from app.export.schemas import ExportOptions
from app.gold import service as gold_service
from app.guidelines.models import GuidelineVersion
from app.projects.models import Candidate, CandidateSource, Item, ItemKind, ItemPurpose, Prompt


@dataclass(frozen=True)
class Scope:
    """The judgements an export counts: never repeats; the filters of ExportOptions resolved to ids."""

    project_id: int
    excluded_annotators: tuple[int, ...]
    guideline_version_id: int | None
    start: datetime | None  # first instant included
    end: datetime | None  # first instant after the range
    purposes: tuple[str, ...]
    flags: tuple[str, ...]


class DeclareCursor(Executable, ClauseElement):
    """`DECLARE name NO SCROLL CURSOR FOR select`: the query planned as a cursor, to start fast (an index
    order and merge joins that yield rows as they go, not a sort or hash of the whole result first)."""

    inherit_cache = False

    def __init__(self, name: str, statement: Select[Any]) -> None:
        self.name, self.statement = name, statement


@compiles(DeclareCursor)
def _declare(element: DeclareCursor, compiler: Any, **kw: Any) -> str:
    return f"DECLARE {element.name} NO SCROLL CURSOR FOR {compiler.process(element.statement, **kw)}"


def scope_of(session: Session, *, project_id: int, options: ExportOptions) -> Scope:
    """Resolves the options: annotators left out by gold accuracy or pause, the guideline version's id."""
    excluded: list[int] = []
    if options.min_gold_accuracy is not None or options.exclude_paused:
        for user_id, standing in gold_service.standings(session, project_id=project_id).items():
            low = (options.min_gold_accuracy is not None and standing.gold_accuracy is not None
                   and standing.gold_accuracy < options.min_gold_accuracy)
            if low or (options.exclude_paused and standing.status == "paused"):
                excluded.append(user_id)
    version_id = None
    if options.guideline_version is not None:
        version_id = session.scalar(select(GuidelineVersion.id).where(
            GuidelineVersion.project_id == project_id, GuidelineVersion.number == options.guideline_version))
        if version_id is None:
            raise Invalid(f"the project has no guideline version {options.guideline_version}",
                          field="guideline_version")
    purposes = [ItemPurpose.REGULAR.value]
    purposes += [ItemPurpose.GOLD.value] if options.include_gold else []
    purposes += [ItemPurpose.CALIBRATION.value] if options.include_calibration else []
    start = datetime.combine(options.since, time(), UTC) if options.since else None
    end = datetime.combine(options.until + timedelta(days=1), time(), UTC) if options.until else None
    return Scope(project_id, tuple(sorted(excluded)), version_id, start, end, tuple(purposes),
                 tuple(options.exclude_flags))


def counted(scope: Scope) -> list[ColumnElement[bool]]:
    """Conditions on Judgement (joined to Item) for the judgements that count."""
    where: list[ColumnElement[bool]] = [
        Judgement.project_id == scope.project_id, Judgement.is_repeat.is_(False),
        Item.purpose.in_(scope.purposes)]
    if scope.excluded_annotators:
        where.append(Judgement.annotator_id.not_in(scope.excluded_annotators))
    if scope.guideline_version_id is not None:
        where.append(Judgement.guideline_version_id == scope.guideline_version_id)
    if scope.start is not None:
        where.append(Judgement.created_at >= scope.start)
    if scope.end is not None:
        where.append(Judgement.created_at < scope.end)
    if scope.flags:
        flagged = aliased(Judgement)
        where.append(~exists().where(flagged.item_id == Item.id,
                                     flagged.flags.has_any(array(list(scope.flags)))))
    return where


def messages_text() -> Any:
    """The prompt's messages as jsonb's text: decoded by the export only when a line needs them decoded
    (app/export/formats.py StoredJson)."""
    return cast(Prompt.messages, Text).label("messages")


def pairs(scope: Scope, *, by_prompt: bool = False) -> Select[*tuple[Any, ...]]:
    """One row per pair item with counted votes: the prompt's messages (text), the candidates' ids and texts,
    and the votes counted by choice (with the a and b strengths summed), in that column order; by item, or
    `by_prompt` then item (Bradley-Terry reads a prompt's items together; the item order needs no sort of
    its own)."""
    def count(choice: str) -> Any:
        return func.count().filter(Judgement.choice == choice).label(f"n_{choice}")

    def strength(choice: str) -> Any:
        given = func.coalesce(Judgement.strength, DEFAULT_STRENGTH)
        summed = func.sum(given).filter(Judgement.choice == choice)
        return func.coalesce(summed, 0).label(f"s_{choice}")

    votes = (
        select(Judgement.item_id, *(count(choice) for choice in CHOICES), strength("a"), strength("b"))
        .join(Item, Item.id == Judgement.item_id)
        .where(*counted(scope), Judgement.choice.is_not(None), Item.kind == ItemKind.PAIR)
        .group_by(Judgement.item_id)
        .subquery()
    )
    cand_a, cand_b = aliased(Candidate), aliased(Candidate)
    return (
        select(Item.id, Item.prompt_id, messages_text(), cand_a.id.label("a_id"), cand_a.text.label("a_text"),
               cand_b.id.label("b_id"), cand_b.text.label("b_text"), votes.c.n_a, votes.c.n_b, votes.c.n_tie,
               votes.c.n_both_bad, votes.c.s_a, votes.c.s_b)
        .join(votes, votes.c.item_id == Item.id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .join(cand_a, cand_a.id == Item.candidate_a_id)
        .join(cand_b, cand_b.id == Item.candidate_b_id)
        .order_by(*((Item.prompt_id, Item.id) if by_prompt else (Item.id,)))
    )


def labels(scope: Scope) -> Select[*tuple[Any, ...]]:
    """(item, annotator, choice) of every counted pairwise vote, by item: what Dawid-Skene fits."""
    return (
        select(Judgement.item_id, Judgement.annotator_id, Judgement.choice)
        .join(Item, Item.id == Judgement.item_id)
        .where(*counted(scope), Judgement.choice.is_not(None), Item.kind == ItemKind.PAIR)
        .order_by(Judgement.item_id, Judgement.id)
    )


def edits(scope: Scope) -> Select[*tuple[Any, ...]]:
    """Direct edits (edit ≻ original) by annotators the filters keep, made within the date range; none
    under a guideline-version filter (an edit records no version)."""
    edit, original = aliased(Candidate), aliased(Candidate)
    where: list[ColumnElement[bool]] = [Prompt.project_id == scope.project_id,
                                        edit.source == CandidateSource.EDIT, edit.parent_id.is_not(None)]
    if scope.excluded_annotators:
        where.append(edit.author_id.not_in(scope.excluded_annotators))
    if scope.start is not None:
        where.append(edit.created_at >= scope.start)
    if scope.end is not None:
        where.append(edit.created_at < scope.end)
    if scope.guideline_version_id is not None:
        where.append(false())
    return (
        select(edit.id, edit.text, original.id.label("original_id"), original.text.label("original_text"),
               Prompt.id.label("prompt_id"), messages_text())
        .join(original, original.id == edit.parent_id)
        .join(Prompt, Prompt.id == edit.prompt_id)
        .where(*where)
        .order_by(edit.id)
    )


def _ratings_of_judgement() -> Any:
    return (select(func.coalesce(func.jsonb_object_agg(Rating.attribute, Rating.value), literal({}, JSONB)))
            .where(Rating.judgement_id == Judgement.id).scalar_subquery())


def rated(scope: Scope) -> Select[*tuple[Any, ...]]:
    """One row per single (Likert) item with counted ratings: the response and [annotator, ratings] pairs."""
    per_judgement = (
        select(Judgement.item_id, Judgement.id, Judgement.annotator_id,
               _ratings_of_judgement().label("given"))
        .join(Item, Item.id == Judgement.item_id)
        .where(*counted(scope), Item.kind == ItemKind.SINGLE)
        .subquery()
    )
    gathered = (
        select(per_judgement.c.item_id,
               func.array_agg(per_judgement.c.annotator_id).aggregate_order_by(per_judgement.c.id)
               .label("annotators"),
               func.array_agg(per_judgement.c.given).aggregate_order_by(per_judgement.c.id).label("given"))
        .where(per_judgement.c.given != literal({}, JSONB))
        .group_by(per_judgement.c.item_id)
        .subquery()
    )
    return (
        select(Item.id, Item.prompt_id, messages_text(), Candidate.id.label("candidate_id"),
               Candidate.text, Candidate.model, gathered.c.annotators, gathered.c.given)
        .join(gathered, gathered.c.item_id == Item.id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .join(Candidate, Candidate.id == Item.candidate_a_id)
        .order_by(Item.prompt_id, Item.id)
    )


def judgements(scope: Scope) -> Select[*tuple[Any, ...]]:
    """Every counted judgement, pairwise and Likert, by item then judgement: the raw format."""
    return (
        select(Judgement.id, Judgement.item_id, Item.prompt_id, Item.kind, Item.candidate_a_id,
               Item.candidate_b_id, Judgement.annotator_id, Judgement.swapped, Judgement.choice,
               Judgement.strength, _ratings_of_judgement().label("ratings"), Judgement.rationale,
               Judgement.flags, Judgement.seconds, GuidelineVersion.number.label("guideline_version"),
               Judgement.created_at)
        .join(Item, Item.id == Judgement.item_id)
        .outerjoin(GuidelineVersion, GuidelineVersion.id == Judgement.guideline_version_id)
        .where(*counted(scope))
        .order_by(Judgement.item_id, Judgement.id)
    )


def census(session: Session, scope: Scope) -> dict[str, Any]:
    """What the counted judgements are: how many, by how many annotators on how many items, under which
    guideline versions, on responses from which models (for the dataset card). Hash aggregates only: no
    count(DISTINCT ...) sorts over every judgement."""
    groups = session.execute(
        select(Judgement.annotator_id, GuidelineVersion.number, func.count())
        .select_from(Judgement).join(Item, Item.id == Judgement.item_id)
        .outerjoin(GuidelineVersion, GuidelineVersion.id == Judgement.guideline_version_id)
        .where(*counted(scope)).group_by(Judgement.annotator_id, GuidelineVersion.number)).all()
    versions: dict[int | None, int] = {}
    for _, number, n in groups:
        versions[number] = versions.get(number, 0) + n
    judged = exists().where(Judgement.item_id == Item.id, *counted(scope))
    used = select(Item.id, Item.candidate_a_id, Item.candidate_b_id).where(
        Item.project_id == scope.project_id, judged).cte("used")
    items = session.scalar(select(func.count()).select_from(used)) or 0
    candidates = select(used.c.candidate_a_id).union(select(used.c.candidate_b_id))
    models = session.execute(
        select(Candidate.model, Candidate.source, func.count())
        .where(Candidate.id.in_(candidates))
        .group_by(Candidate.model, Candidate.source).order_by(Candidate.model, Candidate.source))
    return {
        "judgements": sum(n for _, _, n in groups), "annotators": len({a for a, _, _ in groups}),
        "items": items,
        "guideline_versions": [{"version": v, "judgements": versions[v]}
                               for v in sorted(versions, key=lambda v: (v is None, v or 0))],
        "models": [{"model": m or None, "source": str(s), "candidates": c} for m, s, c in models],
    }
