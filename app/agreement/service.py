"""Agreement: inter-annotator agreement per project and attribute (over time, for filtered subsets),
annotator standing, and the figures of the admin dashboard."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.agreement import report, snapshot, standing, votes
from app.agreement.schemas import (
    AgreementOut,
    AgreementQuery,
    AnnotatorOut,
    AnnotatorsOut,
    ColumnValue,
    FiltersOut,
    Order,
)
from app.agreement.snapshot import Judgements, Memo, SnapshotCache
from app.errors import Invalid
from app.gold import service as gold_service
from app.projects.models import Item, ItemPurpose, Mode, Project

T = TypeVar("T")
CACHE = SnapshotCache()  # the web process's cache (see SnapshotCache); services take it as a parameter
N_BOOT = 1000
COLUMNS = ("annotator", "judgements", "agreement", "kappa", "left_share", "left_p", "median_seconds",
           "fast_share", "repeats", "self_consistency")
ExtraColumns = Mapping[str, Mapping[int, ColumnValue]]  # column -> user id -> value
_RESULTS: Memo[object] = Memo(64)  # figures computed from a cached snapshot, by what they depend on


@dataclass(frozen=True)
class Filters:
    """Judgements made under one guideline version and/or on the UTC days since..until (both included)."""

    guideline_version: int | None = None
    since: date | None = None
    until: date | None = None

    @classmethod
    def of(cls, query: AgreementQuery) -> Filters:
        return cls(query.guideline_version, query.since, query.until)

    def out(self) -> FiltersOut:
        return FiltersOut(guideline_version=self.guideline_version, since=self.since, until=self.until)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The first instant included and the first instant after the range."""
        start = datetime.combine(self.since, time(), UTC) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time(), UTC) if self.until else None
        return start, end

    def mask(self, data: Judgements) -> NDArray[np.bool_]:
        keep = np.ones(len(data), bool)
        start, end = self.bounds()
        if self.guideline_version is not None:
            keep &= data.guideline == self.guideline_version
        if start is not None:
            keep &= data.at >= start.timestamp()
        if end is not None:
            keep &= data.at < end.timestamp()
        return keep


@dataclass(frozen=True)
class Progress:
    items: int  # regular items
    complete: int  # judged by overlap_k annotators
    votes: int  # non-repeat votes on regular items, at most overlap_k per item
    overlap_k: int

    @property
    def needing_votes(self) -> int:
        return self.items - self.complete


@dataclass(frozen=True)
class Selection:
    """A project's judgements split the way the measures need them."""

    everything: Judgements  # within the filters, every purpose, repeats too: the work done
    counted: votes.Grouped  # regular items, no repeats, within the filters: what agreement measures
    repeats: Judgements  # regular items, repeats within the filters
    originals: Judgements  # regular items, no repeats, any time: what repeats are checked against
    scales: list[report.Scale]  # the counted judgements' values on each attribute


@dataclass
class Source:
    """One read of a project's judgements, cached or not, and the split of them made when first needed."""

    project: Project
    filters: Filters
    data: Judgements
    version: int | None  # the snapshot version when read through a cache: results are remembered under it
    item_total: int
    special_items: NDArray[np.int64]  # gold and calibration item ids, ascending
    _selection: Selection | None = field(default=None, repr=False)

    def selection(self) -> Selection:
        if self._selection is None:
            self._selection = _split(self)
        return self._selection

    def remember(self, kind: str, params: Hashable, compute: Callable[[], T]) -> T:
        """compute(), remembered per snapshot version and everything else the figures depend on."""
        if self.version is None:
            return compute()
        project = self.project
        key = (kind, params, self.version, project.id, project.mode, project.overlap_k,
               tuple(project.attribute_names), self.item_total, self.special_items.tobytes(), self.filters)
        return _RESULTS.get(key, compute)  # type: ignore[return-value]


def forget() -> None:
    """Drop every remembered result (benchmarks measure cold computations with it)."""
    _RESULTS.clear()
    report.ESTIMATES.clear()


def read(session: Session, *, project: Project, filters: Filters | None = None,
         cache: SnapshotCache | None = None) -> Source:
    """The project's judgements (through `cache` when given), and its item counts, now."""
    if cache is not None:
        snap = cache.load(session, project)
        data, version = snap.data, snap.version
    else:
        data = snapshot.fetch(session, project_id=project.id, attributes=project.attribute_names)
        version = None
    total = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id)) or 0
    special = session.scalars(select(Item.id).where(Item.project_id == project.id,
                                                    Item.purpose != ItemPurpose.REGULAR)).all()
    return Source(project, filters or Filters(), data, version, total, np.asarray(sorted(special), np.int64))


def _split(source: Source) -> Selection:
    data, filters = source.data, source.filters
    regular = ~np.isin(data.item, source.special_items)
    within = filters.mask(data)
    counted = regular & ~data.repeat
    originals = data if counted.all() else data.take(counted)  # no gold, no repeats: no copy
    unfiltered = filters == Filters()
    grouped = votes.Grouped.of(originals if unfiltered else data.take(counted & within))
    return Selection(
        everything=data if unfiltered else data.take(within), counted=grouped,
        repeats=data.take(regular & data.repeat & within), originals=originals,
        scales=report.scales(grouped.judgements, pairwise=source.project.mode == Mode.PAIRWISE,
                             attributes=source.project.attribute_names))


def progress(source: Source) -> Progress:
    """Completion from the regular items' non-repeat judgements (what Item.judgement_count counts)."""
    def compute() -> Progress:
        _, per_item = np.unique(source.selection().originals.item, return_counts=True)
        k = source.project.overlap_k
        return Progress(items=source.item_total - len(source.special_items),
                        complete=int((per_item >= k).sum()), votes=int(np.minimum(per_item, k).sum()),
                        overlap_k=k)

    return source.remember("progress", None, compute)


def agreement_of(source: Source, *, bucket: str = "auto", n_boot: int = N_BOOT, seed: int = 0
                 ) -> AgreementOut:
    if bucket not in ("auto", "day", "week"):
        raise Invalid(f"unknown bucket {bucket!r}: use auto, day or week", field="bucket")

    def compute() -> AgreementOut:
        selection = source.selection()
        counted = selection.counted
        unit: votes.Bucket = votes.choose_bucket(counted.judgements.at) if bucket == "auto" else (
            "day" if bucket == "day" else "week")
        return AgreementOut(
            project_id=source.project.id, mode=str(source.project.mode), filters=source.filters.out(),
            bucket=unit, bootstrap_resamples=n_boot,
            attributes=[report.attribute_agreement(counted, scale, bucket=unit, n_boot=n_boot, seed=seed)
                        for scale in selection.scales])

    return source.remember("agreement", (bucket, n_boot, seed), compute)


def agreement(session: Session, *, project: Project, filters: Filters | None = None, bucket: str = "auto",
              n_boot: int = N_BOOT, seed: int = 0, cache: SnapshotCache | None = None) -> AgreementOut:
    """Every measure per attribute with its bootstrap interval, and the primary one over time."""
    source = read(session, project=project, filters=filters, cache=cache)
    return agreement_of(source, bucket=bucket, n_boot=n_boot, seed=seed)


def standings_of(session: Session, source: Source, *, fast_seconds: float = standing.FAST_SECONDS,
                 sort: str = "annotator", order: Order = "asc", extra_columns: ExtraColumns | None = None
                 ) -> AnnotatorsOut:
    extra = dict(extra_columns or {})
    columns = [*COLUMNS, *extra]
    if sort not in columns:
        raise Invalid(f"unknown column {sort!r}: sort by one of {', '.join(columns)}", field="sort")

    def compute() -> list[standing.Standing]:
        selection = source.selection()
        pairwise = source.project.mode == Mode.PAIRWISE
        codings = [scale.codings["nominal" if pairwise else "rating"] for scale in selection.scales]
        return standing.standings(selection.counted, codings, repeats=selection.repeats,
                                  originals=selection.originals, pairwise=pairwise, fast_seconds=fast_seconds)

    rows = source.remember("standings", fast_seconds, compute)
    users = _users(session, [row.annotator_id for row in rows])
    out = [AnnotatorOut(**vars(row) | {"user_id": row.annotator_id} | users[row.annotator_id],
                        extra={name: values.get(row.annotator_id) for name, values in extra.items()})
           for row in rows]
    return AnnotatorsOut(project_id=source.project.id, filters=source.filters.out(),
                         fast_seconds=fast_seconds, sort=sort, order=order, columns=columns,
                         annotators=sort_annotators(out, sort, order))


def standings(session: Session, *, project: Project, filters: Filters | None = None,
              fast_seconds: float = standing.FAST_SECONDS, sort: str = "annotator", order: Order = "asc",
              extra_columns: ExtraColumns | None = None, cache: SnapshotCache | None = None) -> AnnotatorsOut:
    """Every annotator with judgements in the project and their quality measures, sorted by `sort`.

    `extra_columns` adds measures kept by other domains, such as gold accuracy, as sortable columns.
    """
    source = read(session, project=project, filters=filters, cache=cache)
    return standings_of(session, source, fast_seconds=fast_seconds, sort=sort, order=order,
                        extra_columns=extra_columns)


def _users(session: Session, ids: list[int]) -> dict[int, dict[str, str]]:
    rows = session.execute(select(User.id, User.username, User.display_name).where(User.id.in_(ids)))
    return {row.id: {"username": row.username, "display_name": row.display_name or row.username}
            for row in rows}


def sort_annotators(rows: list[AnnotatorOut], sort: str, order: Order) -> list[AnnotatorOut]:
    """Sorted by the column, annotators without a value last in either order; ties by username."""

    def value(row: AnnotatorOut) -> ColumnValue:
        if sort == "annotator":
            return row.username
        return getattr(row, sort) if sort in COLUMNS else row.extra.get(sort)

    by_name = sorted(rows, key=lambda row: row.username)
    present = [row for row in by_name if value(row) is not None]
    present.sort(key=lambda row: value(row), reverse=order == "desc")  # type: ignore[arg-type,return-value]
    return present + [row for row in by_name if value(row) is None]


def extra_columns(session: Session, *, project: Project) -> dict[str, dict[int, ColumnValue]]:
    """Annotator-table columns that other domains keep, by column name and user id: gold accuracy and
    the pause status, from the gold domain's standings."""
    standings = gold_service.standings(session, project_id=project.id)
    return {
        "gold_accuracy": {uid: s.gold_accuracy for uid, s in standings.items()},
        "status": {uid: s.status for uid, s in standings.items()},
    }
