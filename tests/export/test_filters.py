"""Which judgements an export counts: the filters, the aggregations and the formats through the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.annotation.models import Judgement
from app.assignment.models import Lease
from app.db import utcnow
from app.errors import Invalid
from app.export import service as export_service
from app.export.schemas import ExportOptions
from app.gold import service as gold_service
from app.gold.models import GoldScore
from app.projects.models import Candidate, Item, ItemKind, Mode
from tests.export.conftest import Voted
from tests.factories import (
    make_gold,
    make_guideline_version,
    make_judgement,
    make_pair_item,
    make_project,
    make_prompt,
    make_single_item,
)
from tests.factories import make_user_without_password as make_user


def rows(db: Session, project_id: int, **options: object) -> list[dict[str, object]]:
    chosen = ExportOptions.model_validate(options)
    lines = export_service.stream_export(db, project_id=project_id, options=chosen, secret="s")
    return [json.loads(line) for line in lines]


def items(db: Session, voted: Voted, **options: object) -> list[object]:
    return [row["item_id"] for row in rows(db, voted.project.id, **options)]


def test_min_agreement_leaves_out_items_whose_modal_choice_is_too_small(db: Session, voted: Voted) -> None:
    majority, swapped = voted.items["majority"].id, voted.items["swapped"].id  # agreement 2/3 and 1
    assert items(db, voted) == [majority, swapped]
    assert items(db, voted, min_agreement=0.7) == [swapped]
    assert items(db, voted, min_agreement=2 / 3) == [majority, swapped]


def test_annotators_below_the_gold_accuracy_or_paused_are_left_out(db: Session, voted: Voted) -> None:
    u1, u2, u3 = voted.annotators
    gold = make_pair_item(db, voted.project)
    make_gold(db, gold, "a")
    db.add_all([GoldScore(project_id=voted.project.id, item_id=gold.id, annotator_id=u3.id, choice="b",
                          correct=False),
                GoldScore(project_id=voted.project.id, item_id=gold.id, annotator_id=u1.id, choice="a",
                          correct=True)])
    db.flush()
    # Without u3's b(2) the majority item is a unanimous a(3), a(1): agreement 1, margin 2.
    (first, _) = rows(db, voted.project.id, min_gold_accuracy=0.5)
    assert (first["n_votes"], first["agreement"], first["margin"]) == (2, 1.0, 2.0)
    assert len(rows(db, voted.project.id, min_gold_accuracy=0.5, format="raw")) == 9
    admin = make_user(db, Role.ADMIN)
    gold_service.pause(db, project=voted.project, user_id=u2.id, reason="r", actor=admin, now=utcnow())
    assert len(rows(db, voted.project.id, format="raw", exclude_paused=True)) == 10 - 4  # u2 voted 4 times
    assert len(rows(db, voted.project.id, format="raw")) == 10


def test_gold_and_calibration_items_are_left_out_unless_asked(db: Session, voted: Voted) -> None:
    gold = voted.items["swapped"]
    make_gold(db, gold, "b")
    assert items(db, voted) == [voted.items["majority"].id]
    assert items(db, voted, include_gold=True) == [voted.items["majority"].id, gold.id]
    assert len(rows(db, voted.project.id, format="raw")) == 8


def test_repeats_are_never_counted(db: Session, voted: Voted) -> None:
    split, user = voted.items["split"], voted.annotators[0]  # a(2) by user, b(2): a repeat b would decide it
    lease = Lease(item_id=split.id, annotator_id=user.id, project_id=split.project_id, swapped=True,
                  is_repeat=True, expires_at=utcnow(), completed_at=utcnow())
    db.add(lease)
    db.flush()
    db.add(Judgement(project_id=split.project_id, item_id=split.id, lease_id=lease.id, annotator_id=user.id,
                     choice="b", strength=2, swapped=True, idempotency_key="repeat", is_repeat=True))
    db.flush()
    assert voted.items["split"].id not in items(db, voted)
    assert len(rows(db, voted.project.id, format="raw")) == 10


def test_guideline_version_and_date_range(db: Session, voted: Voted) -> None:
    admin = make_user(db, Role.ADMIN)
    version = make_guideline_version(db, voted.project, admin)
    swapped = voted.items["swapped"]
    for judgement in db.query(Judgement).filter_by(item_id=swapped.id):
        judgement.guideline_version_id = version.id
        judgement.created_at = datetime(2026, 1, 15, 12, tzinfo=UTC)
    db.flush()
    assert items(db, voted, guideline_version=1) == [swapped.id]
    assert rows(db, voted.project.id, format="raw", guideline_version=1)[0]["guideline_version"] == 1
    assert items(db, voted, since="2026-01-15", until="2026-01-15") == [swapped.id]
    assert items(db, voted, until="2026-01-14") == []
    assert items(db, voted, since="2026-01-16") == [voted.items["majority"].id]
    with pytest.raises(Invalid) as error:
        rows(db, voted.project.id, guideline_version=7)
    assert error.value.field == "guideline_version"


def test_flagged_items_are_left_out_by_flag(db: Session, voted: Voted) -> None:
    extra = make_user(db)
    make_judgement(db, voted.items["majority"], extra, "a", 1, flags=["hallucination"])
    assert voted.items["majority"].id in items(db, voted)
    assert items(db, voted, exclude_flags=["unsafe"]) == items(db, voted)
    assert items(db, voted, exclude_flags="hallucination,unsafe") == [voted.items["swapped"].id]
    assert items(db, voted, exclude_flags=["any"]) == [voted.items["swapped"].id]
    with pytest.raises(ValueError, match="unknown flag"):
        ExportOptions(exclude_flags=["spicy"])


def test_dawid_skene_and_half_policy_through_the_service(db: Session, voted: Voted) -> None:
    ds = rows(db, voted.project.id, aggregation="dawid-skene", tie_policy="ignore")
    by_item = {row["item_id"]: row for row in ds}
    swapped = by_item[voted.items["swapped"].id]
    assert swapped["chosen_id"] == voted.items["swapped"].candidate_b_id
    assert float(str(swapped["confidence"])) > 0.9
    half = items(db, voted, tie_policy="half")
    assert voted.items["ties"].id not in half and voted.items["majority"].id in half


def test_bradley_terry_exports_every_implied_pair_of_a_prompt(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=1, members=[annotator])
    prompt = make_prompt(db, project, "Rank us", ["x", "y", "z"])
    x, y, z = sorted(db.query(Candidate).filter_by(prompt_id=prompt.id), key=lambda c: c.id)
    pairs = [Item(project_id=project.id, prompt_id=prompt.id, kind=ItemKind.PAIR, candidate_a_id=a.id,
                  candidate_b_id=b.id, open_slots=1) for a, b in ((x, y), (y, z))]
    db.add_all(pairs)
    db.flush()
    make_judgement(db, pairs[0], annotator, "a", 2)  # x ≻ y
    make_judgement(db, pairs[1], annotator, "a", 1)  # y ≻ z
    found = rows(db, project.id, aggregation="bradley-terry")
    assert [(row["chosen_id"], row["rejected_id"], row["item_id"]) for row in found] == [
        (x.id, y.id, pairs[0].id), (x.id, z.id, None), (y.id, z.id, pairs[1].id)]
    assert [row["confidence"] for row in found] == [0.75, 0.9, 0.75]  # as solved by hand in test_ranking
    assert [row["n_votes"] for row in found] == [1, 0, 1]
    assert [row["agreement"] for row in found] == [1.0, None, 1.0]
    assert {row["prompt_id"] for row in found} == {prompt.id}


@pytest.mark.parametrize(("fmt", "keys", "count"), [
    ("trl-implicit", ["chosen", "rejected", "margin"], 2), ("kto", ["prompt", "completion", "label"], 4),
    ("hh", ["chosen", "rejected", "margin"], 2)])
def test_pair_formats_through_the_service(db: Session, voted: Voted, fmt: str, keys: list[str],
                                          count: int) -> None:
    found = rows(db, voted.project.id, format=fmt)
    assert len(found) == count
    assert all(list(row)[:len(keys)] == keys for row in found)


def test_ratings_has_one_row_per_rated_response(db: Session) -> None:
    u1, u2 = make_user(db), make_user(db)
    project = make_project(db, mode=Mode.LIKERT, members=[u1, u2])
    single = make_single_item(db, project, body="An answer.")
    make_judgement(db, single, u1, ratings={"helpfulness": 6, "correctness": 3})
    make_judgement(db, single, u2, ratings={"helpfulness": 3})
    (row,) = rows(db, project.id, format="ratings")
    assert row["response"] == [{"role": "assistant", "content": "An answer."}]
    assert row["n_annotators"] == 2
    mean = dict(row["mean"])  # type: ignore[call-overload]
    assert mean["helpfulness"] == 4.5 and mean["correctness"] == 3.0
    assert len(row["ratings"]) == 2  # type: ignore[arg-type]
