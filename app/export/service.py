"""Export: a project's judgements streamed as JSONL (TRL preference pairs, raw judgements), and its audit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, distinct, func, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, aliased, sessionmaker

from app.accounts.models import User
from app.annotation.models import Judgement, Rating
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.config import get_settings
from app.export import aggregate, formats
from app.export.aggregate import TiePolicy, Vote
from app.export.formats import ExportFormat, JudgementRow, PairRow
from app.projects.models import Candidate, Item, ItemKind, Project, Prompt

CHUNK_SIZE = 1000  # rows fetched from the server-side cursor at a time
BLOCK_CHARS = 64 * 1024  # a response sends whole lines in blocks of about this size, not line by line


@dataclass(frozen=True)
class ExportSummary:
    judgements: int  # lines of the raw export
    voted_pairs: int  # pairwise items with at least one choice: at most this many TRL lines


def stream_export(session: Session, *, project_id: int, fmt: str, secret: str | None = None,
                  tie_policy: str = TiePolicy.DROP, chunk_size: int = CHUNK_SIZE) -> Iterator[str]:
    """JSONL lines (each ending in a newline) of the project's export, read through a server-side cursor.

    The format and policy are checked now (Invalid), before the first line is read. Memory stays flat:
    rows arrive `chunk_size` at a time and each line is yielded as soon as it is built. `secret` keys
    the annotator pseudonyms (default: the PREFSTUDIO_SECRET_KEY setting).
    """
    kind = formats.parse_format(fmt)
    policy = aggregate.parse_policy(tie_policy)
    if kind is ExportFormat.TRL:
        return _trl_lines(session, project_id, policy, chunk_size)
    key = get_settings().secret_key if secret is None else secret
    return _raw_lines(session, project_id, key, chunk_size)


def stream_export_with(factory: sessionmaker[Session], *, project_id: int, fmt: str,
                       secret: str | None = None, tie_policy: str = TiePolicy.DROP,
                       block_chars: int | None = None) -> Iterator[str]:
    """stream_export in a session of its own, closed (rolled back) when the stream ends or is dropped.

    For streaming responses, which are sent after the request's unit of work has committed and closed,
    and for the command line. The session only reads and never commits. With `block_chars`, whole lines
    are joined into blocks of about that many characters (a response then sends few large chunks).
    """
    formats.parse_format(fmt)
    aggregate.parse_policy(tie_policy)
    lines = _lines_in_own_session(factory, project_id=project_id, fmt=fmt, secret=secret,
                                  tie_policy=tie_policy)
    return lines if block_chars is None else _blocks(lines, block_chars)


def _lines_in_own_session(factory: sessionmaker[Session], *, project_id: int, fmt: str, secret: str | None,
                          tie_policy: str) -> Iterator[str]:
    with factory() as session:
        session.execute(text("SET TRANSACTION READ ONLY"))  # closing rolls back; nothing could be written
        yield from stream_export(session, project_id=project_id, fmt=fmt, secret=secret,
                                 tie_policy=tie_policy)


def _blocks(lines: Iterator[str], block_chars: int) -> Iterator[str]:
    block: list[str] = []
    size = 0
    for line in lines:
        block.append(line)
        size += len(line)
        if size >= block_chars:
            yield "".join(block)
            block, size = [], 0
    if block:
        yield "".join(block)


def _trl_lines(session: Session, project_id: int, policy: TiePolicy, chunk_size: int) -> Iterator[str]:
    for row in session.execute(_pairs_query(project_id).execution_options(yield_per=chunk_size)):
        votes = [Vote(choice, strength) for choice, strength in zip(row.choices, row.strengths, strict=True)]
        verdict = aggregate.majority(votes, tie_policy=policy)
        if verdict is not None:
            pair = PairRow(item_id=row.id, prompt_id=row.prompt_id, messages=row.messages,
                           text_a=row.text_a, text_b=row.text_b)
            yield formats.trl_line(pair, verdict)


def _pairs_query(project_id: int) -> Select[*tuple[Any, ...]]:
    """One row per voted pair item: its texts, and its votes gathered by the database, in item order."""
    votes = (
        select(Judgement.item_id,
               func.array_agg(Judgement.choice).aggregate_order_by(Judgement.id).label("choices"),
               func.array_agg(Judgement.strength).aggregate_order_by(Judgement.id).label("strengths"))
        .where(Judgement.project_id == project_id, Judgement.choice.is_not(None),
               Judgement.is_repeat.is_(False))
        .group_by(Judgement.item_id)
        .subquery()
    )
    cand_a, cand_b = aliased(Candidate), aliased(Candidate)
    return (
        select(Item.id, Item.prompt_id, Prompt.messages, cand_a.text.label("text_a"),
               cand_b.text.label("text_b"), votes.c.choices, votes.c.strengths)
        .join(votes, votes.c.item_id == Item.id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .join(cand_a, cand_a.id == Item.candidate_a_id)
        .join(cand_b, cand_b.id == Item.candidate_b_id)
        .where(Item.project_id == project_id, Item.kind == ItemKind.PAIR)
        .order_by(Item.id)
    )


def _raw_lines(session: Session, project_id: int, secret: str, chunk_size: int) -> Iterator[str]:
    pseudonyms: dict[int, str] = {}  # one entry per annotator, not per judgement
    for row in session.execute(_judgements_query(project_id).execution_options(yield_per=chunk_size)):
        if row.annotator_id not in pseudonyms:
            pseudonyms[row.annotator_id] = formats.pseudonym(secret=secret, project_id=project_id,
                                                             user_id=row.annotator_id)
        yield formats.raw_line(JudgementRow(
            judgement_id=row.id, item_id=row.item_id, prompt_id=row.prompt_id, kind=str(row.kind),
            candidate_a_id=row.candidate_a_id, candidate_b_id=row.candidate_b_id,
            annotator=pseudonyms[row.annotator_id], swapped=row.swapped,
            choice=None if row.choice is None else str(row.choice), strength=row.strength,
            ratings=row.ratings, rationale=row.rationale, flags=list(row.flags or []), seconds=row.seconds,
            created_at=row.created_at))


def _judgements_query(project_id: int) -> Select[*tuple[Any, ...]]:
    ratings = (
        select(func.coalesce(func.jsonb_object_agg(Rating.attribute, Rating.value),
                             literal({}, JSONB)))
        .where(Rating.judgement_id == Judgement.id)
        .scalar_subquery()
    )
    return (
        select(Judgement.id, Judgement.item_id, Item.prompt_id, Item.kind, Item.candidate_a_id,
               Item.candidate_b_id, Judgement.annotator_id, Judgement.swapped, Judgement.choice,
               Judgement.strength, ratings.label("ratings"), Judgement.rationale, Judgement.flags,
               Judgement.seconds, Judgement.created_at)
        .join(Item, Item.id == Judgement.item_id)
        .where(Judgement.project_id == project_id, Judgement.is_repeat.is_(False))
        .order_by(Judgement.item_id, Judgement.id)
    )


def export_summary(session: Session, *, project_id: int) -> ExportSummary:
    judgements, voted_pairs = session.execute(
        select(func.count(Judgement.id),
               func.count(distinct(Judgement.item_id)).filter(Judgement.choice.is_not(None)))
        .where(Judgement.project_id == project_id, Judgement.is_repeat.is_(False))
    ).one()
    return ExportSummary(judgements=judgements, voted_pairs=voted_pairs)


def record_export(session: Session, *, project: Project, actor: User | None, fmt: str,
                  count: int | None = None) -> AuditEvent:
    """Audit event "export": the format and how many judgements it draws on (counted now when not given).

    `actor` None: an export from the command line.
    Recorded in the caller's unit of work, before the stream starts: an attempted download is on record
    even when the client drops the connection halfway.
    """
    kind = formats.parse_format(fmt)
    if count is None:
        count = export_summary(session, project_id=project.id).judgements
    return audit_service.record(session, actor_id=None if actor is None else actor.id, action="export",
                                project_id=project.id, target=f"project:{project.id}",
                                after={"format": kind.value, "judgements": count})
