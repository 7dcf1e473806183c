"""Export: a project's judgements streamed as JSONL in every format, with its dataset card and audit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, distinct, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import User
from app.annotation.models import Judgement
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.config import get_settings
from app.db import utcnow
from app.errors import NotFound
from app.export import card as cards
from app.export import formats, package, query, streams
from app.export.card import Tally
from app.export.query import Scope
from app.export.schemas import DownloadOptions, ExportOptions
from app.projects.models import Item, Project

CHUNK_SIZE = 1000  # rows fetched from the server-side cursor at a time
BLOCK_CHARS = 64 * 1024  # a response sends whole lines in blocks of about this size, not line by line
TALLY_LINES = 256  # lines hashed and counted for the card at a time


@dataclass(frozen=True)
class ExportSummary:
    judgements: int  # counted judgements (no repeats, regular items): lines of the default raw export
    voted_pairs: int  # pairwise items with at least one choice: at most this many majority TRL lines


@dataclass(frozen=True)
class Plan:
    """An export checked and resolved in the request's session, before anything streams."""

    project_id: int
    project_name: str
    attributes: tuple[str, ...]
    options: ExportOptions
    scope: Scope


@dataclass
class Run:
    """One export as it streams: `lines()` once, then `card()` describes exactly what was written."""

    plan: Plan
    secret: str
    created_at: datetime
    factory: sessionmaker[Session] | None = None
    session: Session | None = None
    chunk_size: int = CHUNK_SIZE
    tally: Tally = field(default_factory=Tally)
    census: dict[str, Any] | None = None

    @property
    def filename(self) -> str:
        return formats.download_name(project_id=self.plan.project_id, fmt=self.plan.options.format,
                                     now=self.created_at)

    def lines(self) -> Iterator[str]:
        if self.session is not None:
            yield from self._lines(self.session, own_connection=False)
            return
        assert self.factory is not None
        with self.factory() as session:
            own = isinstance(session.get_bind(), Engine)  # not when joined to an open transaction (tests)
            if own:
                # One snapshot for the census, Dawid-Skene's first pass and every line.
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            session.execute(text("SET TRANSACTION READ ONLY"))  # closing rolls back; nothing is written
            session.execute(text("SET LOCAL work_mem = '64MB'"))  # sorts and hashes of the export in memory
            yield from self._lines(session, own_connection=own)

    def _lines(self, session: Session, *, own_connection: bool) -> Iterator[str]:
        self.census = query.census(session, self.plan.scope)
        ctx = streams.Context(self.plan.scope, self.plan.options, self.secret, self.plan.attributes,
                              self.chunk_size, own_connection=own_connection)
        pending: list[str] = []  # hashed and counted TALLY_LINES at a time (one encode and update, not each)
        for line in streams.lines(session, ctx, self.tally):
            pending.append(line)
            if len(pending) == TALLY_LINES:
                self.tally.line("".join(pending))
                pending.clear()
            yield line
        self.tally.line("".join(pending))

    def card(self) -> dict[str, Any]:
        if self.census is None:
            raise RuntimeError("the card describes a finished export: stream its lines first")
        plan = self.plan
        return cards.card_json(project_id=plan.project_id, project_name=plan.project_name,
                               filename=self.filename, options=plan.options, census=self.census,
                               excluded_annotators=len(plan.scope.excluded_annotators), tally=self.tally,
                               created_at=self.created_at)


def plan_export(session: Session, *, project_id: int, options: ExportOptions) -> Plan:
    """Checks the options against the project (Invalid, NotFound) and resolves the filters."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    scope = query.scope_of(session, project_id=project_id, options=options)
    return Plan(project.id, project.name, tuple(project.attribute_names), options, scope)


def start(plan: Plan, *, factory: sessionmaker[Session], secret: str | None, now: datetime) -> Run:
    """A run that reads through a session of its own, closed when the stream ends or is dropped: for
    streaming responses (sent after the request's unit of work has closed) and the command line."""
    return Run(plan, get_settings().secret_key if secret is None else secret, now, factory=factory)


def stream_export(session: Session, *, project_id: int, fmt: str | None = None, secret: str | None = None,
                  tie_policy: str | None = None, chunk_size: int = CHUNK_SIZE,
                  options: ExportOptions | None = None) -> Iterator[str]:
    """JSONL lines (each ending in a newline) of the project's export, read in `session`.

    The options are checked now (Invalid), before the first line is read. `fmt` and `tie_policy`, when
    given, override the options of the same name (default: ExportOptions(), a majority `trl` export).
    `secret` keys the annotator pseudonyms (default: the PREFSTUDIO_SECRET_KEY setting).
    """
    chosen = options or ExportOptions()
    overrides: dict[str, Any] = {} if fmt is None else {"format": formats.parse_format(fmt)}
    if tie_policy is not None:
        overrides["tie_policy"] = tie_policy
    if overrides:
        chosen = ExportOptions.model_validate(chosen.model_dump() | overrides)
    plan = plan_export(session, project_id=project_id, options=chosen)
    run = Run(plan, get_settings().secret_key if secret is None else secret, utcnow(),
              session=session, chunk_size=chunk_size)
    return run.lines()


def blocks(lines: Iterator[str], block_chars: int = BLOCK_CHARS) -> Iterator[str]:
    """Whole lines joined into blocks of about `block_chars` characters: a response sends few chunks."""
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


def export_summary(session: Session, *, project_id: int) -> ExportSummary:
    scope = query.scope_of(session, project_id=project_id, options=ExportOptions())
    judgements, voted_pairs = session.execute(
        select(func.count(Judgement.id),
               func.count(distinct(Judgement.item_id)).filter(Judgement.choice.is_not(None)))
        .join(Item, Item.id == Judgement.item_id).where(*query.counted(scope))
    ).one()
    return ExportSummary(judgements=judgements, voted_pairs=voted_pairs)


def preview(session: Session, plan: Plan) -> dict[str, Any]:
    """What an export with these options would draw on: the census and the annotators left out."""
    return query.census(session, plan.scope) | {"excluded_annotators": len(plan.scope.excluded_annotators)}


def record_export(session: Session, *, plan: Plan, actor: User | None, channel: str) -> AuditEvent:
    """Audit event "export": format, every option, and how many judgements the filters keep.

    `actor` None: an export from the command line. Recorded in the caller's unit of work, before the
    stream starts: an attempted download is on record even when the client drops the connection halfway.
    """
    census = query.census(session, plan.scope)
    options = plan.options
    return audit_service.record(
        session, actor_id=None if actor is None else actor.id, action="export", project_id=plan.project_id,
        target=f"project:{plan.project_id}",
        after={"format": options.format.value, "channel": channel, "judgements": census["judgements"],
               "style": options.style.value, "margin": options.margin,
               "aggregation": options.aggregation.value,
               "tie_policy": options.tie_policy.value, "filters": options.card_filters(),
               "excluded_annotators": len(plan.scope.excluded_annotators)})


@dataclass(frozen=True)
class Download:
    body: Iterator[str] | Iterator[bytes]
    media_type: str
    filename: str


def download(run: Run, options: DownloadOptions) -> Download:
    """The response body: a zip with the JSONL and its card (the default), or the JSONL alone in blocks."""
    if options.package == "jsonl":
        return Download(blocks(run.lines()), formats.MEDIA_TYPE, run.filename)
    stem = run.filename.removesuffix(".jsonl")
    body = package.zip_stream(run.lines(), stem=stem, card=run.card)
    return Download(body, package.MEDIA_TYPE, f"{stem}.zip")


def write_export(run: Run, out: TextIO, *, card_stem: Path | None) -> None:
    """The JSONL into `out`, then, with `card_stem`, its card as `{stem}.card.md` and `{stem}.card.json`."""
    out.writelines(run.lines())
    if card_stem is not None:
        card = run.card()
        Path(f"{card_stem}.card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n",
                                                   encoding="utf-8")
        Path(f"{card_stem}.card.md").write_text(cards.card_markdown(card), encoding="utf-8")
