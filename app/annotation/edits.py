"""Direct edits: an annotator rewrites a response of their item into a better one. The rewrite becomes a new
candidate (source "edit") with its author and the candidate it improves; exports pair it edit ≻ original."""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation.schemas import EditIn
from app.assignment import policy
from app.assignment import service as assignment_service
from app.errors import Invalid
from app.projects.models import Candidate, CandidateSource, Item, ItemKind


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["equal", "added", "removed"]
    text: str


@dataclass(frozen=True)
class Edit:
    candidate_id: int
    original_id: int
    side: str
    diff: list[DiffLine]

    @property
    def added(self) -> int:
        return sum(line.kind == "added" for line in self.diff)

    @property
    def removed(self) -> int:
        return sum(line.kind == "removed" for line in self.diff)


def line_diff(old: str, new: str) -> list[DiffLine]:
    """Every line of both texts in order: unchanged, removed (old only) or added (new only)."""
    kinds: dict[str, Literal["equal", "added", "removed"]] = {" ": "equal", "+": "added", "-": "removed"}
    return [DiffLine(kinds[line[0]], line[2:]) for line in difflib.ndiff(old.splitlines(), new.splitlines())
            if line[0] in kinds]


def edit_response(session: Session, *, project_id: int, lease_id: int, annotator: User,
                  form: EditIn) -> Edit:
    """Store the annotator's rewrite of a response of their leased item as a new candidate.

    The lease must be the annotator's (PermissionDenied, NotFound, Conflict as for a submission); the text
    must differ from the response (Invalid on `text`). The new candidate takes no part in assignment: it is
    a preference pair of its own (edit ≻ original), which exports read from `parent_id`.
    """
    lease = assignment_service.get_lease(session, lease_id=lease_id, annotator=annotator,
                                         project_id=project_id)
    item = session.get(Item, lease.item_id)
    assert item is not None
    if item.kind == ItemKind.SINGLE and form.side != "a":
        raise Invalid("a Likert item has one response: side a", field="side")
    canonical = "a"
    if item.kind == ItemKind.PAIR:
        canonical = policy.shown_order(lease.swapped)[0 if form.side == "a" else 1]
    original_id = item.candidate_a_id if canonical == "a" else item.candidate_b_id
    original = session.scalar(select(Candidate).where(Candidate.id == original_id))
    assert original is not None
    if form.text == original.text.strip():
        raise Invalid("the rewrite is the same as the response: change something", field="text")
    edit = Candidate(prompt_id=original.prompt_id, text=form.text, source=CandidateSource.EDIT,
                     config_key=f"edit:{uuid.uuid4().hex[:16]}", sample_index=0, model="", revision="",
                     params={}, author_id=annotator.id, parent_id=original.id)
    session.add(edit)
    session.flush()
    return Edit(candidate_id=edit.id, original_id=original.id, side=form.side,
                diff=line_diff(original.text, form.text))
