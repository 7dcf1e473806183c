"""A small pairwise project with known votes, shared by the export tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.projects.models import Item, Project, Prompt
from tests.factories import make_judgement, make_pair_item, make_project
from tests.factories import make_user_without_password as make_user

SYSTEM_PROMPT = [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Question majority?"}]


@dataclass
class Voted:
    project: Project
    annotators: list[User]
    researcher: User
    items: dict[str, Item]


@pytest.fixture
def voted(db: Session) -> Voted:
    """Known votes (canonical choices, strength) per item; the expected TRL lines are in EXPECTED_TRL."""
    u1, u2, u3 = (make_user(db, Role.ANNOTATOR) for _ in range(3))
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, overlap_k=3, members=[u1, u2, u3, researcher])
    items = {name: make_pair_item(db, project, text=f"Question {name}?", a=f"{name} A", b=f"{name} B")
             for name in ("majority", "ties", "both_bad", "split", "swapped", "unvoted")}
    prompt = db.get(Prompt, items["majority"].prompt_id)
    assert prompt is not None
    prompt.messages = SYSTEM_PROMPT
    votes: dict[str, list[tuple[User, str, int | None, bool]]] = {
        "majority": [(u1, "a", 3, False), (u2, "a", 1, True), (u3, "b", 2, False)],
        "ties": [(u1, "tie", None, False), (u2, "tie", None, True)],
        "both_bad": [(u1, "both_bad", None, False)],
        "split": [(u1, "a", 2, False), (u2, "b", 2, True)],
        # u1 saw B on the left and clicked it: stored canonically as "b", like u2's unswapped vote.
        "swapped": [(u1, "b", 3, True), (u2, "b", 2, False)],
    }
    for name, item_votes in votes.items():
        for user, choice, strength, swapped in item_votes:
            make_judgement(db, items[name], user, choice, strength, swapped=swapped)
    db.flush()
    return Voted(project, [u1, u2, u3], researcher, items)


def expected_trl(voted: Voted) -> list[dict[str, object]]:
    majority, swapped = voted.items["majority"], voted.items["swapped"]
    return [
        {"prompt": SYSTEM_PROMPT,
         "chosen": [{"role": "assistant", "content": "majority A"}],
         "rejected": [{"role": "assistant", "content": "majority B"}],
         "margin": 0.6667, "item_id": majority.id, "prompt_id": majority.prompt_id,
         "chosen_id": majority.candidate_a_id, "rejected_id": majority.candidate_b_id, "n_votes": 3,
         "agreement": 0.6667, "confidence": 0.6667, "source": "votes"},
        {"prompt": [{"role": "user", "content": "Question swapped?"}],
         "chosen": [{"role": "assistant", "content": "swapped B"}],
         "rejected": [{"role": "assistant", "content": "swapped A"}],
         "margin": 2.5, "item_id": swapped.id, "prompt_id": swapped.prompt_id,
         "chosen_id": swapped.candidate_b_id, "rejected_id": swapped.candidate_a_id, "n_votes": 2,
         "agreement": 1.0, "confidence": 1.0, "source": "votes"},
    ]
