"""The lines of each format, generated from the export queries through a server-side cursor.

Memory stays flat: rows arrive `chunk_size` at a time and each line is yielded as soon as it is built.
Only Dawid-Skene holds something per vote: three integers, in numpy arrays, for its fit.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import sqlalchemy
from sqlalchemy.orm import Session

from app.export import aggregate, formats, query, ranking
from app.export.aggregate import CHOICES, Counts, Labels, TiePolicy, Verdict, Vote
from app.export.card import Tally
from app.export.formats import ExportFormat, JudgementRow, Preference, RatedResponse, Shape, StoredJson
from app.export.query import Scope
from app.export.schemas import Aggregation, ExportOptions


@dataclass(frozen=True)
class Context:
    scope: Scope
    options: ExportOptions
    secret: str
    attributes: tuple[str, ...]
    chunk_size: int
    # The connection is the export's own (nothing else reads through it while a query streams): the pairs
    # may then stream through one FETCH ALL (see _tuples), which holds the connection until the last row.
    own_connection: bool = False


class Pseudonyms(dict[int, str]):
    def __init__(self, secret: str, project_id: int) -> None:
        super().__init__()
        self.secret, self.project_id = secret, project_id

    def __missing__(self, user_id: int) -> str:
        self[user_id] = formats.pseudonym(secret=self.secret, project_id=self.project_id, user_id=user_id)
        return self[user_id]


def lines(session: Session, ctx: Context, tally: Tally) -> Iterator[str]:
    fmt = ctx.options.format
    if fmt is ExportFormat.RAW:
        return _raw(session, ctx)
    if fmt is ExportFormat.RATINGS:
        return _ratings(session, ctx, tally)
    writer, shape = formats.PAIR_WRITERS[fmt], Shape(ctx.options.style, ctx.options.margin)
    if fmt is ExportFormat.KTO:  # two lines a pair, split at "\n" (splitlines: at a U+2028 in a string too)
        return (f"{line}\n" for pref in preferences(session, ctx, tally)
                for line in writer(pref, shape)[:-1].split("\n"))
    return (writer(pref, shape) for pref in preferences(session, ctx, tally))


def _rows(session: Session, ctx: Context, statement: Any) -> Iterable[Any]:
    return session.execute(statement.execution_options(yield_per=ctx.chunk_size))


CHUNKED_LIBPQ = 170000  # libpq 17 and later return a streamed result in chunks of rows
_cursor_numbers = itertools.count(1)  # next() on a count is atomic: exports stream in several threads


def _tuples(session: Session, ctx: Context, statement: Any) -> Iterator[tuple[Any, ...]]:
    """The rows as plain tuples, streamed `chunk_size` at a time: planned as a cursor (to start fast), then
    read with one FETCH ALL, so Postgres computes the next rows while these are turned into lines (a FETCH
    per chunk would leave it idle in between); the socket's backpressure keeps it at most a buffer ahead.
    Through the server-side cursor of _rows, a FETCH per chunk, where the connection is shared (a query of
    the caller's between two lines must not wait on the stream) or the libpq is older than 17."""
    if not ctx.own_connection or psycopg.pq.version() < CHUNKED_LIBPQ:
        yield from (tuple(row) for row in _rows(session, ctx, statement))
        return
    name = f"export_rows_{next(_cursor_numbers)}"
    session.execute(query.DeclareCursor(name, statement))
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor:
        yield from cursor.stream(f"FETCH ALL FROM {name}", size=ctx.chunk_size)
    session.execute(sqlalchemy.text(f"CLOSE {name}"))


def _votes(row: Any) -> Counts:
    return Counts(row.n_a, row.n_b, row.n_tie, row.n_both_bad, row.s_a, row.s_b)


def _kept(votes: Counts, ctx: Context, tally: Tally) -> bool:
    """Counts the item in the tally; False when it falls below the minimum agreement."""
    agreement = aggregate.item_agreement(votes)
    minimum = ctx.options.min_agreement
    if minimum is not None and (agreement is None or agreement < minimum):
        tally.items_below_agreement += 1
        return False
    tally.item(agreement)
    return True


def preferences(session: Session, ctx: Context, tally: Tally) -> Iterator[Preference]:
    """The aggregated pairs, then (unless left out) the direct edits: edit ≻ original."""
    yield from _voted(session, ctx, tally)
    if ctx.options.include_edits:
        for row in _rows(session, ctx, query.edits(ctx.scope)):
            tally.preferences += 1
            tally.edit_pairs += 1
            yield Preference(item_id=None, prompt_id=row.prompt_id, messages=StoredJson(row.messages),
                             chosen_id=row.id, chosen=row.text, rejected_id=row.original_id,
                             rejected=row.original_text, n_votes=1, agreement=1.0, confidence=1.0, margin=1.0,
                             source="edit")


def _voted(session: Session, ctx: Context, tally: Tally) -> Iterator[Preference]:
    policy = ctx.options.tie_policy
    if ctx.options.aggregation is Aggregation.BRADLEY_TERRY:
        rows = _rows(session, ctx, query.pairs(ctx.scope, by_prompt=True))
        for _, prompt_rows in itertools.groupby(rows, key=lambda row: row.prompt_id):
            yield from _bradley_terry(list(prompt_rows), ctx, tally)
        return
    fitted = _fit_dawid_skene(session, ctx) if ctx.options.aggregation is Aggregation.DAWID_SKENE else None
    rows = _tuples(session, ctx, query.pairs(ctx.scope))
    # Once per item: the row unpacked as a tuple (query.pairs's column order), not read by attribute name.
    for item_id, prompt_id, messages, a_id, a_text, b_id, b_text, *counts in rows:
        votes = Counts(*counts)
        if not _kept(votes, ctx, tally):
            continue
        verdict = (aggregate.majority(votes, tie_policy=policy) if fitted is None
                   else fitted.verdict(item_id, votes))
        if verdict is None:
            tally.items_undecided += 1
            continue
        tally.preferences += 1
        if verdict.winner == "a":
            chosen_id, chosen, rejected_id, rejected = a_id, a_text, b_id, b_text
        else:
            chosen_id, chosen, rejected_id, rejected = b_id, b_text, a_id, a_text
        yield Preference(item_id, prompt_id, StoredJson(messages), chosen_id, chosen, rejected_id, rejected,
                         verdict.n_votes, verdict.agreement, verdict.confidence, verdict.margin)


@dataclass(frozen=True)
class FittedDawidSkene:
    items: np.ndarray[Any, np.dtype[np.int64]]  # item ids, ascending
    posterior: aggregate.Posterior
    policy: TiePolicy

    def verdict(self, item_id: int, votes: Counts) -> Verdict | None:
        at = int(np.searchsorted(self.items, item_id))
        if at >= len(self.items) or self.items[at] != item_id:
            return None
        return aggregate.ds_verdict(votes, self.posterior.items[at], self.posterior.classes, self.policy)


def _fit_dawid_skene(session: Session, ctx: Context) -> FittedDawidSkene:
    """The first pass: every kept item's votes as integers, and the EM fit over them."""
    items, annotators, labels = array("q"), array("q"), array("q")
    code = {choice: n for n, choice in enumerate(CHOICES)}
    rows = _tuples(session, ctx, query.labels(ctx.scope))
    for item_id, item_rows in itertools.groupby(rows, key=lambda r: r[0]):
        votes = list(item_rows)
        if not _kept(Counts.of(Vote(choice) for _, _, choice in votes), ctx, Tally()):
            continue
        for _, annotator_id, choice in votes:
            items.append(item_id)
            annotators.append(annotator_id)
            labels.append(code[choice])
    ids, item_index = np.unique(np.frombuffer(items, np.int64), return_inverse=True)
    _, annotator_index = np.unique(np.frombuffer(annotators, np.int64), return_inverse=True)
    fitted = aggregate.dawid_skene(
        Labels(item_index.astype(np.int64), annotator_index.astype(np.int64),
               np.frombuffer(labels, np.int64)),
        tie_policy=ctx.options.tie_policy)
    return FittedDawidSkene(ids, fitted, ctx.options.tie_policy)


def _bradley_terry(rows: list[Any], ctx: Context, tally: Tally) -> Iterator[Preference]:
    """Every pair Bradley-Terry implies among one prompt's candidates; the direct votes when an item
    compared the pair."""
    kept = [(row, votes) for row in rows if _kept(votes := _votes(row), ctx, tally)]
    messages = StoredJson(rows[0].messages)
    index: dict[int, int] = {}
    texts: dict[int, str] = {}
    for row, _ in kept:
        for cid, text in ((row.a_id, row.a_text), (row.b_id, row.b_text)):
            index.setdefault(cid, len(index))
            texts[cid] = text
    ids = list(index)
    comparisons = [ranking.Comparison(index[row.a_id], index[row.b_id], votes) for row, votes in kept]
    direct = {frozenset((row.a_id, row.b_id)): (row, votes) for row, votes in kept}
    implied = ranking.implied_pairs(comparisons, len(ids), tie_policy=ctx.options.tie_policy)
    emitted = set()
    policy = ctx.options.tie_policy
    for pair in implied:
        winner, loser = ids[pair.winner], ids[pair.loser]
        row, votes = direct.get(frozenset((winner, loser)), (None, Counts()))
        n, share = votes.counted(policy), None
        if row is not None and n:
            share = votes.weight("a" if row.a_id == winner else "b", policy) / n
        emitted.add(None if row is None else row.id)
        tally.preferences += 1
        tally.implied_pairs += row is None
        yield Preference(item_id=None if row is None else row.id, prompt_id=rows[0].prompt_id,
                         messages=messages, chosen_id=winner, chosen=texts[winner], rejected_id=loser,
                         rejected=texts[loser], n_votes=n, agreement=share,
                         confidence=pair.probability, margin=pair.margin)
    tally.items_undecided += sum(row.id not in emitted for row, _ in kept)


def _ratings(session: Session, ctx: Context, tally: Tally) -> Iterator[str]:
    names = Pseudonyms(ctx.secret, ctx.scope.project_id)
    shape = Shape(ctx.options.style, ctx.options.margin)
    for row in _rows(session, ctx, query.rated(ctx.scope)):
        tally.items_with_votes += 1
        yield formats.ratings_line(RatedResponse(
            candidate_id=row.candidate_id, item_id=row.id, prompt_id=row.prompt_id,
            messages=StoredJson(row.messages), response=row.text, model=row.model, attributes=ctx.attributes,
            ratings=[(names[who], given) for who, given in zip(row.annotators, row.given, strict=True)]),
            shape)


def _raw(session: Session, ctx: Context) -> Iterator[str]:
    names = Pseudonyms(ctx.secret, ctx.scope.project_id)
    for row in _rows(session, ctx, query.judgements(ctx.scope)):
        yield formats.raw_line(JudgementRow(
            judgement_id=row.id, item_id=row.item_id, prompt_id=row.prompt_id, kind=str(row.kind),
            candidate_a_id=row.candidate_a_id, candidate_b_id=row.candidate_b_id,
            annotator=names[row.annotator_id], swapped=row.swapped,
            choice=None if row.choice is None else str(row.choice), strength=row.strength,
            ratings=row.ratings, rationale=row.rationale, flags=list(row.flags or []), seconds=row.seconds,
            guideline_version=row.guideline_version, created_at=row.created_at))
