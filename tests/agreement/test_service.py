"""Agreement and annotator standing from a real database: only regular items and non-repeat judgements
count, filters and time buckets select the right judgements, and the snapshot cache stays exact."""

from __future__ import annotations

from datetime import date

import krippendorff
import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.agreement import service as agreement_service
from app.agreement import snapshot
from app.agreement.service import Filters
from app.agreement.snapshot import SnapshotCache
from app.errors import Invalid
from app.projects.models import Mode
from tests.agreement.conftest import MONDAY, NOMINAL, SIGNED, TUESDAY, Voted, add_repeat
from tests.factories import make_judgement, make_project, make_single_item
from tests.factories import make_user_without_password as make_user


def reference_alpha(rows: list[list[int | None]], level: str) -> float:
    matrix = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    return float(krippendorff.alpha(reliability_data=matrix.T, level_of_measurement=level))


def test_snapshot_reads_every_judgement_as_arrays(db: Session, voted: Voted) -> None:
    data = snapshot.fetch(db, project_id=voted.project.id, attributes=[])
    assert len(data) == 17 and list(data.id) == sorted(data.id)
    j = voted.judgements["i3", 1]
    row = int(np.searchsorted(data.id, j.id))
    assert (data.item[row], data.annotator[row]) == (j.item_id, j.annotator_id)
    assert (snapshot.CHOICES[data.choice[row]], data.strength[row], data.swapped[row]) == ("b", 3, True)
    assert data.seconds[row] == 40.0 and data.at[row] == TUESDAY.timestamp()
    no_time = int(np.searchsorted(data.id, voted.judgements["i4", 1].id))
    assert np.isnan(data.seconds[no_time])
    assert data.repeat.sum() == 3
    assert sorted(set(data.guideline.tolist())) == [-1, voted.version_id]
    tie = int(np.searchsorted(data.id, voted.judgements["i2", 2].id))
    assert (snapshot.CHOICES[data.choice[tie]], data.strength[tie]) == ("tie", 0)


def test_agreement_counts_only_regular_items_and_no_repeats(db: Session, voted: Voted) -> None:
    result = agreement_service.agreement(db, project=voted.project, n_boot=200)
    (preference,) = result.attributes
    assert preference.attribute == "preference" and preference.judgements == 11
    metrics = preference.metrics
    assert metrics["alpha_nominal"].value == pytest.approx(reference_alpha(NOMINAL, "nominal"), abs=1e-9)
    assert metrics["alpha_interval"].value == pytest.approx(reference_alpha(SIGNED, "interval"), abs=1e-9)
    assert metrics["alpha_ordinal"].value == pytest.approx(reference_alpha(SIGNED, "ordinal"), abs=1e-9)
    # items (a,a,a) (a,b,tie) (b,b,both_bad) (a,a): agreeing pairs 3/3, 0/3, 1/3, 1/1 → mean 7/12
    assert metrics["percent_agreement"].value == pytest.approx(7 / 12)
    # without ties and both_bad: (a,a,a) 1, (a,b) 0, (b,b) 1, (a,a) 1 → 3/4
    assert metrics["percent_agreement_no_ties"].value == pytest.approx(3 / 4)
    assert metrics["alpha_nominal"].n_items == 4
    for estimate in metrics.values():
        assert estimate.low is not None and estimate.high is not None


def test_agreement_over_time_puts_each_item_in_the_day_of_its_newest_judgement(db: Session,
                                                                               voted: Voted) -> None:
    result = agreement_service.agreement(db, project=voted.project, bucket="day", n_boot=100)
    series = result.attributes[0].over_time
    assert [b.start for b in series] == [MONDAY.replace(hour=0), TUESDAY.replace(hour=0)]
    assert [b.estimate.n_items for b in series] == [2, 2]  # i1, i2 on Monday; i3, i4 on Tuesday
    assert series[0].estimate.value == pytest.approx(reference_alpha(NOMINAL[:2], "nominal"), abs=1e-9)
    weekly = agreement_service.agreement(db, project=voted.project, bucket="week", n_boot=100)
    assert [b.estimate.n_items for b in weekly.attributes[0].over_time] == [4]


def test_filters_by_date_range_and_guideline_version(db: Session, voted: Voted) -> None:
    tuesday = Filters(since=date(2026, 1, 6), until=date(2026, 1, 6))
    result = agreement_service.agreement(db, project=voted.project, filters=tuesday, n_boot=100)
    assert result.attributes[0].judgements == 5
    expected = reference_alpha(NOMINAL[2:], "nominal")
    assert result.attributes[0].metrics["alpha_nominal"].value == pytest.approx(expected, abs=1e-9)
    assert result.filters.since == date(2026, 1, 6)
    version = agreement_service.agreement(
        db, project=voted.project, filters=Filters(guideline_version=voted.version_id), n_boot=100)
    assert version.attributes[0].judgements == 6
    expected = reference_alpha(NOMINAL[:2], "nominal")
    assert version.attributes[0].metrics["alpha_nominal"].value == pytest.approx(expected, abs=1e-9)
    nothing = agreement_service.agreement(db, project=voted.project, filters=Filters(since=date(2027, 1, 1)))
    assert nothing.attributes[0].metrics["alpha_nominal"].value is None
    assert nothing.attributes[0].over_time == []


def test_unknown_bucket_is_refused(db: Session, voted: Voted) -> None:
    with pytest.raises(Invalid) as raised:
        agreement_service.agreement(db, project=voted.project, bucket="month")
    assert raised.value.field == "bucket"


def test_annotator_standings(db: Session, voted: Voted) -> None:
    table = agreement_service.standings(db, project=voted.project)
    u1, u2, u3 = (next(a for a in table.annotators if a.user_id == u.id) for u in voted.annotators)
    assert (u1.judgements, u2.judgements, u3.judgements) == (4, 4, 3)  # gold and repeats left out
    # leave-one-out: u3's (a, tie, both_bad) meet majorities a, split, b → 1 of 2
    assert (u1.agreement, u2.agreement, u3.agreement) == (1.0, 1.0, 0.5)
    # u3 against the consensus: (a, a) and (both_bad, b): observed disagreement 1, expected 1.5 → 1 - 2/3
    assert u3.kappa == pytest.approx(1 / 3)
    assert u1.kappa is None  # one category on both sides: chance agreement is total
    # left = (choice is a) != swapped: u1 left, right, right, left; u2 left, right, left, left
    assert (u1.left_share, u1.left_p) == (0.5, 1.0)
    assert u2.left_share == 0.75 and u2.left_p == pytest.approx(0.625)  # 2 · (1 + 4) / 16
    assert u3.left_share == 1.0  # its one a/b choice
    assert (u1.median_seconds, u1.fast_share) == (15.0, 0.25)
    assert (u2.median_seconds, u2.fast_share) == (12.0, 0.0)  # one judgement untimed
    assert u3.fast_share == pytest.approx(1 / 3)
    assert (u1.repeats, u1.self_consistency) == (1, 1.0)
    assert (u2.repeats, u2.self_consistency) == (1, 0.0)
    assert (u3.repeats, u3.self_consistency) == (0, None)  # its repeat was on a gold item
    assert [a.username for a in table.annotators] == sorted(a.username for a in table.annotators)


def test_standings_sort_by_any_column_with_missing_values_last(db: Session, voted: Voted) -> None:
    u1, u2, u3 = voted.annotators
    by_agreement = agreement_service.standings(db, project=voted.project, sort="agreement", order="asc")
    assert [a.user_id for a in by_agreement.annotators] == [u3.id, u1.id, u2.id]
    by_consistency = agreement_service.standings(db, project=voted.project, sort="self_consistency",
                                                 order="desc")
    assert [a.user_id for a in by_consistency.annotators] == [u1.id, u2.id, u3.id]
    extra = {"gold_accuracy": {u2.id: 0.9, u3.id: 0.4}}
    by_gold = agreement_service.standings(db, project=voted.project, sort="gold_accuracy", order="desc",
                                          extra_columns=extra)
    assert [a.user_id for a in by_gold.annotators] == [u2.id, u3.id, u1.id]
    assert by_gold.columns[-1] == "gold_accuracy" and by_gold.annotators[0].extra == {"gold_accuracy": 0.9}
    with pytest.raises(Invalid) as raised:
        agreement_service.standings(db, project=voted.project, sort="gold_accuracy")
    assert raised.value.field == "sort"


def test_fast_threshold_is_configurable(db: Session, voted: Voted) -> None:
    table = agreement_service.standings(db, project=voted.project, fast_seconds=11.0)
    u1 = next(a for a in table.annotators if a.user_id == voted.annotators[0].id)
    assert u1.fast_share == 0.5 and table.fast_seconds == 11.0  # 2 s and 10 s of 2, 10, 20, 30


def test_cache_reads_new_judgements_and_keeps_its_version_when_nothing_changed(db: Session,
                                                                                voted: Voted) -> None:
    cache = SnapshotCache(tail=0)
    first = cache.load(db, voted.project)
    assert cache.load(db, voted.project).version == first.version
    newcomer = make_user(db, Role.ANNOTATOR)
    make_judgement(db, voted.items["i4"], newcomer, "b", 1)
    second = cache.load(db, voted.project)
    assert second.version != first.version and len(second.data) == len(first.data) + 1
    assert snapshot.same(second.data, snapshot.fetch(db, project_id=voted.project.id, attributes=[]))
    cached = agreement_service.agreement(db, project=voted.project, cache=cache, n_boot=100)
    fresh = agreement_service.agreement(db, project=voted.project, n_boot=100)
    assert cached == fresh and cached.attributes[0].judgements == 12


def test_cache_rereads_the_tail_and_everything_when_old(db: Session, voted: Voted) -> None:
    cache = SnapshotCache(tail=1000)
    cache.load(db, voted.project)
    voted.judgements["i1", 0].choice = "b"  # an edit of an old row: within the re-read tail
    db.flush()
    row = cache.load(db, voted.project).data
    assert snapshot.same(row, snapshot.fetch(db, project_id=voted.project.id, attributes=[]))
    stale = SnapshotCache(tail=0, max_age=0.0)  # every load is a full read
    stale.load(db, voted.project)
    voted.judgements["i1", 1].choice = "b"
    db.flush()
    assert snapshot.same(stale.load(db, voted.project).data,
                         snapshot.fetch(db, project_id=voted.project.id, attributes=[]))


def test_likert_agreement_per_attribute_and_self_consistency(db: Session) -> None:
    u1, u2, u3 = (make_user(db, Role.ANNOTATOR) for _ in range(3))
    project = make_project(db, mode=Mode.LIKERT, overlap_k=3)
    helpful = [[7, 6, 7], [2, 3, 2], [4, 4, None], [5, 1, 6]]
    correct = [[3, 3, 3], [1, 7, 2], [6, 6, None], [2, 2, 2]]
    items = [make_single_item(db, project, text=f"Q{i}") for i in range(4)]
    for item, h_row, c_row in zip(items, helpful, correct, strict=True):
        for user, h, c in zip((u1, u2, u3), h_row, c_row, strict=True):
            if h is not None and c is not None:
                make_judgement(db, item, user, ratings={"helpfulness": h, "correctness": c}, seconds=8.0)
    add_repeat(db, items[0], u1, None, at=TUESDAY, ratings={"helpfulness": 7, "correctness": 4})
    result = agreement_service.agreement(db, project=project, n_boot=100)
    assert [a.attribute for a in result.attributes] == ["helpfulness", "correctness"]
    for attribute, rows in zip(result.attributes, (helpful, correct), strict=True):
        for level in ("ordinal", "interval", "nominal"):
            expected = reference_alpha(rows, level)  # type: ignore[arg-type]
            assert attribute.metrics[f"alpha_{level}"].value == pytest.approx(expected, abs=1e-9)
        assert "percent_agreement_no_ties" not in attribute.metrics
    table = agreement_service.standings(db, project=project)
    first = next(a for a in table.annotators if a.user_id == u1.id)
    assert (first.repeats, first.self_consistency) == (1, 0.5)  # helpfulness 7 again, correctness 3 → 4
    assert first.left_share is None and first.judgements == 4
