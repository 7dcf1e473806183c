"""Direct edits: an annotator rewrites a response; the rewrite is a new candidate with its author, shown as
a diff, and exports pair it edit ≻ original."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation import edits
from app.annotation.schemas import EditIn
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import utcnow
from app.errors import Invalid, PermissionDenied
from app.export import service as export_service
from app.export.schemas import ExportOptions
from app.projects.models import Candidate, CandidateSource, Item, Mode
from tests.factories import bearer, login, make_pair_item, make_project, make_single_item, make_user

HTMX = {"HX-Request": "true"}


def leased(db: Session, *, swapped: bool, mode: Mode = Mode.PAIRWISE) -> tuple[Lease, Item, User]:
    annotator = make_user(db)
    project = make_project(db, mode=mode, members=[annotator])
    item = (make_pair_item(db, project, a="Paris is in Spain.", b="Lyon.") if mode == Mode.PAIRWISE
            else make_single_item(db, project, body="Paris is in Spain."))
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow())
    assert lease is not None
    lease.swapped = swapped
    db.flush()
    return lease, item, annotator


def test_an_edit_is_a_new_candidate_with_its_author_and_parent(db: Session) -> None:
    lease, item, user = leased(db, swapped=True)
    # swapped: the left (shown "b") response is candidate a
    done = edits.edit_response(db, project_id=item.project_id, lease_id=lease.id, annotator=user,
                               form=EditIn(side="b", text="Paris is in France.\n"))
    stored = db.get(Candidate, done.candidate_id)
    assert stored is not None
    assert (stored.source, stored.author_id, stored.parent_id) == (CandidateSource.EDIT, user.id,
                                                                   item.candidate_a_id)
    assert stored.text == "Paris is in France." and stored.prompt_id == item.prompt_id
    assert [(line.kind, line.text) for line in done.diff] == [("removed", "Paris is in Spain."),
                                                              ("added", "Paris is in France.")]
    assert db.scalar(select(Item).where(Item.candidate_b_id == stored.id)) is None  # not a new task


def test_an_unchanged_text_or_someone_elses_lease_is_refused(db: Session) -> None:
    lease, item, owner = leased(db, swapped=False)
    with pytest.raises(Invalid) as error:
        edits.edit_response(db, project_id=item.project_id, lease_id=lease.id, annotator=owner,
                            form=EditIn(side="a", text="  Paris is in Spain.  "))
    assert error.value.field == "text"
    with pytest.raises(PermissionDenied):
        edits.edit_response(db, project_id=item.project_id, lease_id=lease.id, annotator=make_user(db),
                            form=EditIn(side="a", text="Better."))
    single, single_item, rater = leased(db, swapped=False, mode=Mode.LIKERT)
    with pytest.raises(Invalid):
        edits.edit_response(db, project_id=single_item.project_id, lease_id=single.id, annotator=rater,
                            form=EditIn(side="b", text="Better."))
    with pytest.raises(ValueError):
        EditIn(side="a", text="   ")


def test_the_workspace_offers_an_edit_and_htmx_shows_the_escaped_diff(app_client: TestClient,
                                                                       db: Session) -> None:
    lease, item, user = leased(db, swapped=False)
    csrf = login(app_client, db, user)
    page = app_client.get(f"/projects/{item.project_id}/annotate").text
    assert f"/projects/{item.project_id}/leases/{lease.id}/edit" in page and 'name="side" value="b"' in page
    url = f"/projects/{item.project_id}/leases/{lease.id}/edit"
    response = app_client.post(url, headers=HTMX,
                               data={"csrf_token": csrf, "side": "a", "text": "<b>Paris</b> is in France."})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div class="edit-result"')
    assert "&lt;b&gt;Paris&lt;/b&gt;" in response.text and "<b>Paris" not in response.text
    assert 'class="diff-removed"' in response.text and 'class="diff-added"' in response.text
    plain = app_client.post(url, data={"csrf_token": csrf, "side": "b", "text": "Lyon is not the capital."})
    assert plain.status_code == 200 and "<h1>Your rewrite of response B</h1>" in plain.text
    assert app_client.post(url, data={"side": "a", "text": "x"}).status_code == 403  # no CSRF token


def test_the_api_edit_and_the_export_pairs_it_edit_over_original(app_client: TestClient, db: Session) -> None:
    lease, item, user = leased(db, swapped=False)
    response = app_client.post(f"/api/v1/projects/{item.project_id}/leases/{lease.id}/edit",
                               json={"side": "a", "text": "Paris is in France."}, headers=bearer(db, user))
    assert response.status_code == 201
    body = response.json()
    assert body["original_id"] == item.candidate_a_id
    assert (body["lines_added"], body["lines_removed"]) == (1, 1)
    lines = [json.loads(line) for line in export_service.stream_export(db, project_id=item.project_id)]
    assert [(row["chosen"][0]["content"], row["rejected"][0]["content"], row["source"], row["item_id"])
            for row in lines] == [("Paris is in France.", "Paris is in Spain.", "edit", None)]
    assert lines[0]["chosen_id"] == body["candidate_id"] and lines[0]["n_votes"] == 1
    kto = list(export_service.stream_export(db, project_id=item.project_id, fmt="kto"))
    assert [json.loads(line)["label"] for line in kto] == [True, False]
    without = ExportOptions(include_edits=False)
    assert list(export_service.stream_export(db, project_id=item.project_id, options=without)) == []
    versioned = export_service.stream_export(db, project_id=item.project_id, fmt="trl",
                                             options=ExportOptions(since="2000-01-01", until="2000-01-02"))
    assert list(versioned) == []
