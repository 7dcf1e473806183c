"""Gold items interleaved among the regular work in claim_next_item; calibration items never served."""

from __future__ import annotations

import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import utcnow
from app.gold import policy
from app.projects.models import Item, ItemPurpose
from tests.factories import make_gold, make_pair_item, make_project
from tests.factories import make_user_without_password as make_user
from tests.gold.support import judge_next


def test_gold_comes_exactly_when_the_draw_for_that_count_says_so(db: Session) -> None:
    annotators = [make_user(db), make_user(db)]
    project = make_project(db, overlap_k=2, members=annotators, gold_rate=0.2)
    for n in range(70):
        make_pair_item(db, project, text=f"regular {n}")
    for n in range(30):
        make_gold(db, make_pair_item(db, project, text=f"gold {n}"))
    claims = 60
    gold_served = 0
    for annotator in annotators:
        for judged in range(claims):
            expected = policy.serve_kind(annotator.id, judged, gold_rate=0.2, repeat_rate=0.0)
            done = judge_next(db, project, annotator)
            assert done is not None
            assert (done.purpose == ItemPurpose.GOLD) == (expected == "gold"), judged
            gold_served += done.purpose == ItemPurpose.GOLD
    total = claims * len(annotators)
    sigma = math.sqrt(total * 0.2 * 0.8)
    assert abs(gold_served - total * 0.2) <= 4.5 * sigma


def test_gold_items_are_shared_take_no_slot_and_come_once_per_annotator(db: Session) -> None:
    annotators = [make_user(db) for _ in range(4)]
    project = make_project(db, overlap_k=2, members=annotators, gold_rate=0.5)
    gold = make_pair_item(db, project, text="a gold prompt")
    make_gold(db, gold)
    for annotator in annotators:  # no regular work: every claim falls back to the gold item
        done = judge_next(db, project, annotator)
        assert done is not None and done.item_id == gold.id
        assert judge_next(db, project, annotator) is None, "each gold item once per annotator"
    db.refresh(gold)
    assert (gold.open_slots, gold.judgement_count) == (2, 0), "gold takes none of the k slots"
    assert db.scalar(select(func.count(Lease.id)).where(Lease.item_id == gold.id)) == 4


def test_regular_work_continues_when_gold_runs_out_and_gold_when_regular_runs_out(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=1, members=[annotator], gold_rate=0.5)
    regular = {make_pair_item(db, project, text=f"r{n}").id for n in range(12)}
    gold = set()
    for n in range(3):
        item = make_pair_item(db, project, text=f"g{n}")
        make_gold(db, item)
        gold.add(item.id)
    seen = []
    while (done := judge_next(db, project, annotator)) is not None:
        seen.append(done.item_id)
    assert sorted(seen) == sorted(regular | gold), "every item once, whichever ran out first"


def test_calibration_items_are_never_served_as_regular_work(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=3, members=[annotator], gold_rate=0.5)
    regular = [make_pair_item(db, project, text=f"r{n}") for n in range(3)]
    for n in range(4):
        make_gold(db, make_pair_item(db, project, text=f"c{n}"), purpose="calibration")
    served = []
    while (done := judge_next(db, project, annotator)) is not None:
        served.append(done.item_id)
    assert sorted(served) == sorted(i.id for i in regular)


def test_skipping_or_losing_a_gold_lease_gives_back_no_slot(db: Session) -> None:
    annotators = [make_user(db), make_user(db)]
    project = make_project(db, overlap_k=2, members=annotators, gold_rate=0.5, lease_minutes=1)
    gold = make_pair_item(db, project)
    make_gold(db, gold)
    now = utcnow()
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotators[0], now=now)
    assert lease is not None and lease.item_id == gold.id and not lease.takes_slot
    locked = assignment_service.lock_lease(db, lease_id=lease.id, annotator=annotators[0])
    assignment_service.give_back(db, lease=locked, now=now)
    other = assignment_service.claim_next_item(db, project=project, annotator=annotators[1], now=now)
    assert other is not None and other.item_id == gold.id
    later = now.replace(year=now.year + 1)
    assert assignment_service.release_expired(db, project_id=project.id, now=later) == 1
    db.refresh(gold)
    assert (gold.open_slots, gold.judgement_count) == (2, 0)


def test_turning_an_item_gold_takes_it_out_of_the_regular_queue(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, overlap_k=1, members=[annotator], gold_rate=0.0)
    item = make_pair_item(db, project)
    make_gold(db, item)
    assert db.get(Item, item.id).purpose == ItemPurpose.GOLD  # type: ignore[union-attr]
    # gold_rate 0: the draw is always "regular", but with no regular work left gold comes anyway
    done = judge_next(db, project, annotator)
    assert done is not None and done.purpose == ItemPurpose.GOLD
