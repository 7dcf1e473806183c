"""The annotation API's common case in a few plain statements: the hot path of every API annotator.

`GET .../next` and `POST .../leases/{id}/judgement` run, for every item, over and over. The general path
(annotation_service with ORM objects, FastAPI's dependencies for the user and the project) costs about
7 ms of CPU a request, most of it loading objects and building statements. This module answers the
common case with a few statements, built with SQLAlchemy from the same pieces as the general path's
(the guideline and gate checks, the claim's standing, the slot taking), compiled once and run on the
session's own psycopg connection, in its transaction:

- next: one statement says who holds the API token, whether they may annotate in the project, whether
  anything stands in the way (guidelines to acknowledge, a gate) and the claim's standing (expired
  leases, the live lease, items judged); then the live lease is described (one statement), or a
  regular slot is taken with the item's texts (one) and the lease inserted (one);
- judgement: one statement signs in and locks the item of the caller's own lease (item first, as
  everywhere); one more inserts the judgement and its ratings if the lease is still live, marks the
  lease judged and counts the judgement on the item (data-modifying CTEs).

Anything else returns None, before anything was written, and the caller takes the general path in the
same transaction, which knows every rule and every error: cookies, unknown tokens, roles and membership,
guidelines, gates, expired leases to release, gold and repeat draws, idempotent repeats, someone else's
lease, a lease released or judged meanwhile. tests/annotation/test_lean.py holds the two paths to the
same answers and the same stored rows.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from psycopg.pq import TransactionStatus
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    insert,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ClauseElement

from app.accounts import service as accounts_service
from app.accounts.models import ApiToken, Role, User
from app.annotation.schemas import (
    Attribute,
    ItemOut,
    JudgementIn,
    JudgementOut,
    Message,
    ShownResponse,
    new_idempotency_key,
)
from app.annotation.service import LeaseFacts, build_judgement
from app.assignment import policy
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.gold import policy as gold_policy
from app.gold import service as gold_service
from app.guidelines import service as guidelines_service
from app.projects.models import Candidate, Item, ItemKind, ItemPurpose, Project, ProjectMember, Prompt


class Plain:
    """A statement compiled once for psycopg and run on the session's DBAPI connection: for these
    statements SQLAlchemy's per-execution work (result and compile-state set-up) cost more CPU than
    Postgres spent running them.

    Prepared (parsed and planned once per connection), with the values the statement fixed itself
    (limits, enum values such as purpose = 'gold') written into the SQL as literals, not sent as
    parameters: Postgres plans a prepared statement once, generically, for whatever the parameters are,
    and a generic plan that cannot see 'gold' took "does this project have gold items" for a sequential
    scan of every item. Planning each run instead (what the engine does for every other statement, see
    app/db.py) cost 1-3 ms of Postgres CPU for these statements, more than running them.
    """

    _dialect = psycopg_dialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=self._dialect, compile_kwargs={"render_postcompile": True})
        sql = str(compiled)
        for key, value in compiled.params.items():
            if value is not None:
                sql = sql.replace(f"%({key})s", _literal(value))
        self.sql = sql

    def row(self, db: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row (or None) of the statement run on `db`, a psycopg connection (driver())."""
        found: tuple[Any, ...] | None = self.cursor(db, params).fetchone()
        return found

    def cursor(self, db: Any, params: Mapping[str, Any]) -> Any:
        return db.execute(self.sql, params, prepare=True)  # the engine prepares nothing by itself


def _literal(value: object) -> str:
    """A constant of our own statements as SQL (never user input: those go as parameters)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def driver(session: Session) -> Any:
    """The psycopg connection under the session, in the session's transaction."""
    return session.connection().connection.driver_connection


@dataclass(frozen=True)
class Bearer:
    """The holder of an API token, seen from one project; `clear`: the common case may go on."""

    user_id: int
    project_id: int
    lease_minutes: int
    uncertain_first: bool
    attributes: list[dict[str, str]]
    gold_rate: float
    repeat_rate: float
    clear: bool  # an admin or annotator, a member (admins need not be), nothing in the way

    @property
    def attribute_names(self) -> list[str]:
        return [a["name"] for a in self.attributes]


_USERS, _TOKENS, _PROJECTS = (cast(Table, User.__table__), cast(Table, ApiToken.__table__),
                              cast(Table, Project.__table__))
_ITEMS, _LEASES = cast(Table, Item.__table__), cast(Table, Lease.__table__)


def _bearer_statement(*columns: ColumnElement[Any], joined: Any = None) -> Select[Any]:
    """Who holds the token (`token_hash`), their access to the project (`project_id`), whether anything
    stands in the way, and `columns`."""
    project_id: ColumnElement[int] = bindparam("project_id")
    user_id = _USERS.c.id
    members = cast(Table, ProjectMember.__table__)
    member = exists().where(members.c.project_id == project_id, members.c.user_id == user_id)
    in_the_way = or_(guidelines_service.unacknowledged(project_id, user_id),
                     gold_service.may_gate(project_id, user_id))
    may_annotate = or_(_USERS.c.role == Role.ADMIN.value, and_(_USERS.c.role == Role.ANNOTATOR.value, member))
    clear = and_(_PROJECTS.c.id.is_not(None), may_annotate, ~in_the_way)
    source = (_TOKENS.join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
              .outerjoin(_PROJECTS, _PROJECTS.c.id == project_id))
    if joined is not None:
        source = source.outerjoin(joined, true())
    return (select(_USERS.c.id, _PROJECTS.c.id, _PROJECTS.c.lease_minutes, _PROJECTS.c.uncertain_first,
                   _PROJECTS.c.attributes, _PROJECTS.c.gold_rate, _PROJECTS.c.repeat_rate, clear, *columns)
            .select_from(source).where(accounts_service.api_token_holder()))


def _locked_lease() -> Any:
    """The caller's lease in the project with its item row locked FOR UPDATE (item first, as everywhere),
    and what never changes on it. Only the token holder's own lease is locked."""
    holder = (select(_TOKENS.c.user_id).join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
              .where(accounts_service.api_token_holder()).scalar_subquery())
    return (select(_ITEMS.c.id, _ITEMS.c.kind, _ITEMS.c.purpose, _LEASES.c.swapped, _LEASES.c.is_repeat,
                   _LEASES.c.completed_at)
            .join(_LEASES, _LEASES.c.item_id == _ITEMS.c.id)
            .where(_LEASES.c.id == bindparam("lease_id"), _LEASES.c.project_id == bindparam("project_id"),
                   _LEASES.c.annotator_id == holder)
            .with_for_update(of=_ITEMS).cte("locked"))


_NOW: ColumnElement[datetime] = bindparam("now")
_HAS_GOLD = exists().where(_ITEMS.c.project_id == bindparam("project_id"),
                           _ITEMS.c.purpose == ItemPurpose.GOLD.value)  # by ix_items_special
_BEARER_NEXT = Plain(_bearer_statement(
    *assignment_service.standing_columns(bindparam("project_id"), _USERS.c.id, _NOW), _HAS_GOLD))
_LOCKED = _locked_lease()
_BEARER_LOCK = Plain(_bearer_statement(*_LOCKED.c, joined=_LOCKED))


def _bearer(row: tuple[Any, ...] | None) -> Bearer | None:
    if row is None or row[1] is None:
        return None
    return Bearer(user_id=row[0], project_id=row[1], lease_minutes=row[2], uncertain_first=row[3],
                  attributes=row[4], gold_rate=row[5], repeat_rate=row[6], clear=bool(row[7]))


def _in_range(project_id: int) -> bool:
    return 0 < project_id < 2**31  # else not a project id Postgres can hold: the general path says so


# --- next ---------------------------------------------------------------------------------------------

_A, _B = aliased(Candidate), aliased(Candidate)
_LIVE = Plain(select(Lease.id, Lease.item_id, Lease.swapped, Lease.expires_at, Item.kind, Prompt.messages,
                     _A.text, _B.text)
              .join(Item, Item.id == Lease.item_id).join(Prompt, Prompt.id == Item.prompt_id)
              .join(_A, _A.id == Item.candidate_a_id).outerjoin(_B, _B.id == Item.candidate_b_id)
              .where(Lease.id == bindparam("lease_id")))


_LEASE_COLUMNS = ["item_id", "annotator_id", "project_id", "swapped", "skipped", "is_repeat", "takes_slot",
                  "expires_at"]


def _with_texts(made: Any) -> Plain:
    """The lease a data-modifying CTE made, with its item's kind and texts, as _item_out reads them."""
    prompts = cast(Table, Prompt.__table__)
    a, b = cast(Table, Candidate.__table__).alias("a"), cast(Table, Candidate.__table__).alias("b")
    return Plain(select(made.c.id, made.c.item_id, made.c.swapped, made.c.expires_at, _ITEMS.c.kind,
                        prompts.c.messages, a.c.text, b.c.text)
                 .select_from(made.join(_ITEMS, _ITEMS.c.id == made.c.item_id)
                              .join(prompts, prompts.c.id == _ITEMS.c.prompt_id)
                              .join(a, a.c.id == _ITEMS.c.candidate_a_id)
                              .outerjoin(b, b.c.id == _ITEMS.c.candidate_b_id)))


def _take_statement(uncertain_first: bool) -> Plain:
    """A regular slot taken (the claim's own UPDATE ... SKIP LOCKED) and its lease inserted, sides by
    policy.swap_sides (in SQL): one statement, so it needs no transaction around it."""
    annotator: ColumnElement[int] = bindparam("for_annotator")
    taken = (assignment_service.take_slot_update(uncertain_first)
             .returning(_ITEMS.c.id, _ITEMS.c.kind).cte("taken"))
    is_pair = taken.c.kind == ItemKind.PAIR.value
    swapped = is_pair & assignment_service.swap_expression(taken.c.id, annotator)
    made = (insert(_LEASES).from_select(_LEASE_COLUMNS, select(
        taken.c.id, annotator, bindparam("in_project"), swapped, false(), false(), true(),
        bindparam("expiry")))
        .returning(_LEASES.c.id, _LEASES.c.item_id, _LEASES.c.swapped, _LEASES.c.expires_at).cte("made"))
    return _with_texts(made)


_TAKE = {uncertain_first: _take_statement(uncertain_first) for uncertain_first in (False, True)}


def _repeat_statement() -> Plain:
    """A repeat lease made (the general path's choice of item, assignment_service.repeat_original; sides
    swapped against the original; no slot taken). Nothing when the annotator claimed the same repeat
    just now (ON CONFLICT DO NOTHING)."""
    annotator: ColumnElement[int] = bindparam("for_annotator")
    original = (assignment_service.repeat_original(bindparam("in_project"), annotator)
                .with_only_columns(Lease.item_id, (Item.kind == ItemKind.PAIR.value) & ~Lease.swapped)
                .cte("original"))
    made = (pg_insert(_LEASES).from_select(_LEASE_COLUMNS, select(
        original.c[0], annotator, bindparam("in_project"), original.c[1], false(), true(), false(),
        bindparam("expiry")))
        .on_conflict_do_nothing()
        .returning(_LEASES.c.id, _LEASES.c.item_id, _LEASES.c.swapped, _LEASES.c.expires_at).cte("made"))
    return _with_texts(made)


_REPEAT = _repeat_statement()


@contextmanager
def _statement_by_statement(db: Any) -> Iterator[None]:
    """Each statement its own transaction (autocommit), when no transaction is open on the connection
    (there is one in tests, which run inside an outer transaction): a claim is one statement, so the
    BEGIN and COMMIT round trips would buy nothing."""
    if db.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    db.autocommit = True
    try:
        yield
    finally:
        db.autocommit = False


def next_item(session: Session, *, token_hash: str, project_id: int, now: datetime) -> ItemOut | None:
    """The caller's live lease, or a regular slot taken; None (nothing written): not the common case
    (see the module), for the general path."""
    if not _in_range(project_id):
        return None
    db = driver(session)
    with _statement_by_statement(db):
        return _next(db, token_hash=token_hash, project_id=project_id, now=now)


def _next(db: Any, *, token_hash: str, project_id: int, now: datetime) -> ItemOut | None:
    row = _BEARER_NEXT.row(db, {"token_hash": token_hash, "project_id": project_id, "now": now})
    who = _bearer(row)
    if who is None or not who.clear:
        return None
    assert row is not None
    expired, live_lease, judged, has_gold = row[8:12]
    if expired:
        return None
    if live_lease is not None:
        live = _LIVE.row(db, {"lease_id": live_lease})
        assert live is not None
        return _item_out(who, live)
    kind = gold_policy.serve_kind(who.user_id, judged, gold_rate=who.gold_rate, repeat_rate=who.repeat_rate)
    if kind == "gold" and has_gold:
        return None
    params = {"in_project": project_id, "for_annotator": who.user_id,
              "expiry": now + timedelta(minutes=who.lease_minutes)}
    if kind == "repeat" and (repeat := _REPEAT.row(db, params)) is not None:
        return _item_out(who, repeat)
    taken = _TAKE[who.uncertain_first].row(db, params)  # also a repeat draw with nothing to repeat
    return _item_out(who, taken) if taken is not None else None


def _item_out(who: Bearer, lease: Sequence[Any]) -> ItemOut:
    """From (lease id, item id, swapped, expiry, kind, prompt messages, text a, text b)."""
    lease_id, item_id, swapped, expires_at, kind, messages, text_a, text_b = lease
    texts = {"a": text_a, "b": text_b or ""}
    sides = policy.shown_order(swapped) if kind == ItemKind.PAIR else ("a",)
    return ItemOut(
        lease_id=lease_id, item_id=item_id, kind="pair" if kind == ItemKind.PAIR else "single",
        prompt=[Message(role=str(m.get("role", "user")), content=str(m.get("content", "")))
                for m in messages],
        responses=[ShownResponse(side=shown_side, text=texts[canonical])
                   for shown_side, canonical in zip(policy.SIDES, sides, strict=False)],
        attributes=[Attribute.model_validate(a) for a in who.attributes],
        expires_at=expires_at, idempotency_key=new_idempotency_key(),
    )


# --- judgement ----------------------------------------------------------------------------------------

# The judgement INSERT, only while the lease is live (read after the lock: this statement's snapshot
# sees every submit, skip and release of the item committed before we got its lock), ON CONFLICT DO
# NOTHING (a taken key inserts nothing, and then nothing else happens); its ratings; the lease marked
# judged; the item counting one more judgement if the lease took a slot. The guideline version in
# force is version_in_force_query's.
_RECORD = Plain(text("""
WITH live AS (
    SELECT id, takes_slot FROM leases WHERE id = :lease_id AND completed_at IS NULL
), stored AS (
    INSERT INTO judgements (project_id, item_id, lease_id, annotator_id, choice, strength, swapped, rationale,
                            flags, seconds, idempotency_key, is_repeat, guideline_version_id)
    SELECT :project_id, :item_id, live.id, :annotator_id, :choice, :strength, :swapped, :rationale,
           CAST(:flags AS jsonb), :seconds, :idempotency_key, :is_repeat,
           (SELECT v.id FROM guideline_versions v
            JOIN guideline_acknowledgements a ON a.version_id = v.id
            WHERE v.project_id = :project_id AND a.user_id = :annotator_id
            ORDER BY v.number DESC LIMIT 1)
    FROM live
    ON CONFLICT DO NOTHING
    RETURNING id, created_at
), rated AS (
    INSERT INTO ratings (judgement_id, attribute, value)
    SELECT stored.id, r.attribute, r.value
    FROM stored,
         unnest(CAST(:rating_names AS varchar[]), CAST(:rating_values AS smallint[])) AS r(attribute, value)
), done AS (
    UPDATE leases SET completed_at = :done_at
    WHERE id = :lease_id AND EXISTS (SELECT FROM stored)
    RETURNING item_id, takes_slot
), counted AS (
    UPDATE items SET judgement_count = items.judgement_count + 1
    FROM done WHERE items.id = done.item_id AND done.takes_slot
)
SELECT id, created_at FROM stored
"""))


def record(session: Session, *, token_hash: str, project_id: int, lease_id: int, form: JudgementIn,
           now: datetime) -> JudgementOut | None:
    """Store the first judgement of the caller's own live regular lease; None (nothing written): not
    the common case (see the module), for the general path. Invalid for a malformed judgement, with the
    general path's words."""
    if not _in_range(project_id) or not 0 < lease_id < 2**31:
        return None
    db = driver(session)
    row = _BEARER_LOCK.row(db, {"token_hash": token_hash, "project_id": project_id, "lease_id": lease_id})
    who = _bearer(row)
    if who is None or not who.clear:
        return None
    assert row is not None
    item_id, kind, purpose, swapped, is_repeat, completed_at = row[8:14]
    if item_id is None or completed_at is not None or purpose != ItemPurpose.REGULAR:
        return None  # not the caller's lease here, judged or skipped already, or a gold item
    facts = LeaseFacts(lease_id, project_id, item_id, who.user_id, swapped, is_repeat, ItemKind(kind))
    values, ratings = build_judgement(facts, who.attribute_names, form)
    params = {**values, "flags": json.dumps(values["flags"]), "done_at": now,
              "rating_names": [name for name, _ in ratings], "rating_values": [value for _, value in ratings]}
    stored = _RECORD.row(db, params)
    if stored is None:  # released or judged meanwhile, or a key taken: the general path says which
        return None
    choice = None if values["choice"] is None else str(values["choice"])
    return JudgementOut(
        id=stored[0], lease_id=lease_id, item_id=item_id, choice=choice,
        shown_choice=policy.to_shown(choice, swapped) if choice else None, strength=values["strength"],
        swapped=swapped, rationale=form.rationale, flags=values["flags"], ratings=dict(ratings),
        seconds=form.seconds, idempotency_key=form.idempotency_key, created_at=stored[1])
