"""A project's judgements as compact numpy arrays, read in one aggregate query, and a per-process cache
that afterwards reads only the newest rows.

Why not ORM rows: 500k judgements as Python objects take seconds; Postgres packs each row into 34 bytes
(int4send, timestamptz_send, ...) and returns them as one bytea, which numpy reads without a copy.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar, cast

import numpy as np
import psycopg
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from app.projects.models import Project

CHOICES = ("a", "tie", "b", "both_bad")  # choice codes 0..3, in the order of the A-to-B scale
NO_CHOICE = -1
EPOCH_2000 = 946_684_800  # timestamptz_send counts microseconds from 2000-01-01 UTC

T = TypeVar("T")
_VERSIONS = itertools.count(1)  # shared by every cache: a version names one snapshot in the process
_ROW = np.dtype([("id", ">i4"), ("item", ">i4"), ("annotator", ">i4"), ("bits", ">i2"), ("seconds", ">f8"),
                 ("at", ">i8"), ("guideline", ">i4")])
_RATING = np.dtype([("judgement", ">i4"), ("attribute", ">i2"), ("value", ">i2")])

_JUDGEMENTS_SQL = """
SELECT string_agg(int4send(j.id) || int4send(j.item_id) || int4send(j.annotator_id)
    || int2send((CASE j.choice WHEN 'a' THEN 0 WHEN 'tie' THEN 1 WHEN 'b' THEN 2 WHEN 'both_bad' THEN 3
                      ELSE 7 END
                 + 8 * coalesce(j.strength, 0) + 32 * j.swapped::int + 64 * j.is_repeat::int)::int2)
    || float8send(coalesce(j.seconds, 'NaN')) || timestamptz_send(j.created_at)
    || int4send(coalesce(j.guideline_version_id, -1)), ''::bytea)
FROM judgements j WHERE j.project_id = %(project)s AND j.id > %(after)s"""

_RATINGS_SQL = """
SELECT string_agg(int4send(r.judgement_id)
    || int2send(coalesce(array_position(%(names)s::text[], r.attribute::text), 0)::int2)
    || int2send(r.value), ''::bytea)
FROM ratings r JOIN judgements j ON j.id = r.judgement_id
WHERE j.project_id = %(project)s AND j.id > %(after)s"""


@dataclass(frozen=True)
class Judgements:
    """Every judgement of a project as parallel arrays, ascending by id."""

    id: NDArray[np.int32]
    item: NDArray[np.int32]
    annotator: NDArray[np.int32]
    choice: NDArray[np.int8]  # index into CHOICES (canonical order), NO_CHOICE for a Likert judgement
    strength: NDArray[np.int8]  # 1..3, 0 when none was recorded
    swapped: NDArray[np.bool_]  # candidate b was shown on the left
    repeat: NDArray[np.bool_]
    seconds: NDArray[np.float64]  # time on task, NaN when not recorded
    at: NDArray[np.float64]  # created_at in seconds since the Unix epoch
    guideline: NDArray[np.int32]  # guideline version id, -1 when none
    ratings: NDArray[np.int8]  # (N, attributes): Likert value 1..7, 0 when missing

    def __len__(self) -> int:
        return len(self.id)

    def take(self, rows: NDArray[Any]) -> Judgements:
        return Judgements(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @staticmethod
    def concat(first: Judgements, second: Judgements) -> Judgements:
        return Judgements(**{f.name: np.concatenate([getattr(first, f.name), getattr(second, f.name)])
                             for f in fields(first)})


def _query(session: Session, sql: str, params: dict[str, Any]) -> bytes:
    driver = cast(psycopg.Connection[Any], session.connection().connection.driver_connection)
    with driver.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def fetch(session: Session, *, project_id: int, attributes: list[str], after: int = 0) -> Judgements:
    """The project's judgements with an id above `after`, in the session's transaction."""
    params: dict[str, Any] = {"project": project_id, "after": after, "names": attributes}
    rows = np.frombuffer(_query(session, _JUDGEMENTS_SQL, params), dtype=_ROW)
    rows = rows[np.argsort(rows["id"], kind="stable")]
    ids = rows["id"].astype(np.int32)
    bits = rows["bits"].astype(np.int16)
    code = bits & 7
    return Judgements(
        id=ids, item=rows["item"].astype(np.int32), annotator=rows["annotator"].astype(np.int32),
        choice=np.where(code == 7, NO_CHOICE, code).astype(np.int8),
        strength=((bits >> 3) & 3).astype(np.int8),
        swapped=(bits & 32) > 0, repeat=(bits & 64) > 0, seconds=rows["seconds"].astype(np.float64),
        at=rows["at"].astype(np.float64) / 1e6 + EPOCH_2000, guideline=rows["guideline"].astype(np.int32),
        ratings=_ratings(session, params, ids, len(attributes)),
    )


def _ratings(session: Session, params: dict[str, Any], ids: NDArray[np.int32], width: int
             ) -> NDArray[np.int8]:
    ratings = np.zeros((len(ids), width), np.int8)
    if width and len(ids):
        found = np.frombuffer(_query(session, _RATINGS_SQL, params), dtype=_RATING)
        found = found[found["attribute"] > 0]
        rows = np.searchsorted(ids, found["judgement"].astype(np.int32))
        ratings[rows, found["attribute"].astype(np.int64) - 1] = found["value"]
    return ratings


def same(first: Judgements, second: Judgements) -> bool:
    return all(np.array_equal(getattr(first, f.name), getattr(second, f.name),
                              equal_nan=getattr(first, f.name).dtype.kind == "f") for f in fields(first))


@dataclass(frozen=True)
class Snapshot:
    data: Judgements
    version: int  # changes whenever `data` does: results computed from it may be remembered under it


@dataclass(frozen=True)
class _Entry:
    snapshot: Snapshot
    loaded_at: float  # time.monotonic() of the last full read


class SnapshotCache:
    """Per-process cache of each project's judgement arrays; losing it only costs a full read.

    A cached project is brought up to date by re-reading the judgements whose id is above (newest cached id
    - `tail`): new rows, and rows of transactions that drew their id earlier but committed later. Every
    `max_age` seconds the whole project is read again, which picks up deletions and edits of older rows.
    """

    def __init__(self, *, max_age: float = 300.0, tail: int = 2000, capacity: int = 8) -> None:
        self.max_age, self.tail, self.capacity = max_age, tail, capacity
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, session: Session, project: Project) -> Snapshot:
        key = (session.get_bind().engine.url.database, project.id, project.created_at,
               tuple(project.attribute_names))
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or now - entry.loaded_at > self.max_age:
            data, loaded_at = fetch(session, project_id=project.id, attributes=project.attribute_names), now
        else:
            data, loaded_at = self._refresh(session, project, entry.snapshot.data), entry.loaded_at
        if entry is not None and (data is entry.snapshot.data or same(data, entry.snapshot.data)):
            snapshot = entry.snapshot
        else:
            snapshot = Snapshot(data, next(_VERSIONS))
        with self._lock:
            self._entries[key] = _Entry(snapshot, loaded_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return snapshot

    def _refresh(self, session: Session, project: Project, data: Judgements) -> Judgements:
        cutoff = max(int(data.id[-1]) - self.tail, 0) if len(data) else 0
        fresh = fetch(session, project_id=project.id, attributes=project.attribute_names, after=cutoff)
        cut = int(np.searchsorted(data.id, cutoff, side="right"))
        if same(data.take(np.arange(cut, len(data))), fresh):
            return data  # nothing new, nothing changed in the tail
        return Judgements.concat(data.take(np.arange(cut)), fresh)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Memo(Generic[T]):
    """A small thread-safe LRU of computed values. The key must hold everything a value depends on."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._values: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            found = self._values.get(key)
        value = compute() if found is None else found
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
