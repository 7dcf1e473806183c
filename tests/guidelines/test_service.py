from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.guidelines import service as guidelines_service
from app.guidelines.models import GuidelineAcknowledgement, GuidelineVersion
from app.projects.models import Project
from tests.factories import make_guideline_version, make_project, make_user_without_password


@pytest.fixture
def admin(db: Session) -> User:
    return make_user_without_password(db, Role.ADMIN)


@pytest.fixture
def project(db: Session) -> Project:
    return make_project(db)


def _row(db: Session, version_id: int) -> tuple[object, ...]:
    return tuple(
        db.execute(
            text("SELECT number, body, summary, published_at FROM guideline_versions WHERE id = :id"),
            {"id": version_id},
        ).one()
    )


def test_publishing_numbers_the_versions_and_the_newest_is_active(
    db: Session, admin: User, project: Project
) -> None:
    assert guidelines_service.active_version(db, project_id=project.id) is None
    v1 = make_guideline_version(db, project, admin, body="one")
    v2 = make_guideline_version(db, project, admin, body="two", summary="second")
    assert (v1.number, v2.number) == (1, 2) and (v1.label, v2.label) == ("v1", "v2")
    active = guidelines_service.active_version(db, project_id=project.id)
    assert active is not None and active.id == v2.id
    assert v2.published_by_id == admin.id and v2.summary == "second" and v2.published_at is not None
    other = make_project(db)
    assert guidelines_service.active_version(db, project_id=other.id) is None


def test_a_new_draft_starts_as_a_copy_of_the_active_version(
    db: Session, admin: User, project: Project
) -> None:
    make_guideline_version(db, project, admin, body="the active text")
    draft = guidelines_service.create_draft(db, project_id=project.id, author=admin, now=utcnow())
    assert draft.is_draft and draft.label == "draft" and draft.body == "the active text"


def test_a_project_has_at_most_one_draft(db: Session, admin: User, project: Project) -> None:
    first = guidelines_service.create_draft(db, project_id=project.id, author=admin, body="x", now=utcnow())
    with pytest.raises(Conflict, match="already has a draft"):
        guidelines_service.create_draft(db, project_id=project.id, author=admin, body="y", now=utcnow())
    again = guidelines_service.open_draft(db, project_id=project.id, author=admin, now=utcnow())
    assert again.id == first.id
    assert db.scalar(select(func.count()).select_from(GuidelineVersion)) == 1


def test_a_published_version_is_frozen_and_editing_it_changes_nothing(
    db: Session, admin: User, project: Project
) -> None:
    version = make_guideline_version(db, project, admin, body="frozen text", summary="v1")
    before = _row(db, version.id)
    with pytest.raises(Conflict, match="published and frozen"):
        guidelines_service.save_draft(
            db, project_id=project.id, version_id=version.id, body="changed", actor=admin, now=utcnow()
        )
    with pytest.raises(Conflict, match="published and frozen"):
        guidelines_service.publish(
            db,
            project_id=project.id,
            version_id=version.id,
            actor=admin,
            summary="again",
            body="changed",
            now=utcnow(),
        )
    db.flush()
    assert _row(db, version.id) == before


def test_the_database_refuses_to_change_a_published_version(
    db: Session, admin: User, project: Project
) -> None:
    version = make_guideline_version(db, project, admin, body="frozen text")
    draft = make_guideline_version(db, project, admin, body="draft text", publish=False)
    with pytest.raises(IntegrityError, match="published and frozen"), db.begin_nested():
        db.execute(update(GuidelineVersion).where(GuidelineVersion.id == version.id).values(body="sneaky"))
    with pytest.raises(IntegrityError, match="published and frozen"), db.begin_nested():
        db.execute(
            update(GuidelineVersion)
            .where(GuidelineVersion.id == version.id)
            .values(published_at=None, number=None)
        )
    db.execute(update(GuidelineVersion).where(GuidelineVersion.id == draft.id).values(body="a draft is free"))
    assert _row(db, version.id)[1] == "frozen text" and _row(db, draft.id)[1] == "a draft is free"


def test_publishing_needs_a_summary_and_a_body_and_changes_nothing_without(
    db: Session, admin: User, project: Project
) -> None:
    draft = make_guideline_version(db, project, admin, body="text", publish=False)
    with pytest.raises(Invalid) as missing:
        guidelines_service.publish(
            db,
            project_id=project.id,
            version_id=draft.id,
            actor=admin,
            summary="  ",
            body="new text",
            now=utcnow(),
        )
    assert missing.value.field == "summary"
    with pytest.raises(Invalid) as empty:
        guidelines_service.publish(
            db,
            project_id=project.id,
            version_id=draft.id,
            actor=admin,
            summary="fine",
            body="  \n",
            now=utcnow(),
        )
    assert empty.value.field == "body"
    db.flush()
    assert _row(db, draft.id) == (None, "text", "", None)
    with pytest.raises(IntegrityError, match="published_has_summary"), db.begin_nested():
        db.execute(
            update(GuidelineVersion)
            .where(GuidelineVersion.id == draft.id)
            .values(number=1, published_at=utcnow())
        )


def test_publish_records_an_audit_event_and_counts_the_publisher_as_having_read_it(
    db: Session, admin: User, project: Project
) -> None:
    make_guideline_version(db, project, admin, body="one")
    v2 = make_guideline_version(
        db, project, admin, body="two", summary="stricter ties", requires_recalibration=True
    )
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "guideline.publish").order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.project_id == project.id and event.actor_id == admin.id
    assert event.before == {"version": 1}
    assert event.after == {
        "version": 2,
        "summary": "stricter ties",
        "requires_recalibration": True,
        "characters": 3,
    }
    assert guidelines_service.pending_acknowledgement(db, project_id=project.id, user_id=admin.id) is None
    assert guidelines_service.version_in_force(db, project_id=project.id, user_id=admin.id) == v2.id


def test_each_annotator_must_acknowledge_the_newest_version(
    db: Session, admin: User, project: Project
) -> None:
    annotator = make_user_without_password(db)
    assert guidelines_service.pending_acknowledgement(db, project_id=project.id, user_id=annotator.id) is None
    make_guideline_version(db, project, admin, body="one")
    make_guideline_version(db, project, admin, body="two")
    draft = make_guideline_version(db, project, admin, body="three", publish=False)
    pending = guidelines_service.pending_acknowledgement(db, project_id=project.id, user_id=annotator.id)
    assert pending is not None and pending.number == 2  # the newest published one, never the draft
    with pytest.raises(Conflict, match="draft cannot be acknowledged"):
        guidelines_service.acknowledge(
            db, project_id=project.id, version_id=draft.id, user=admin, now=utcnow()
        )
    first = guidelines_service.acknowledge(
        db, project_id=project.id, version_id=pending.id, user=annotator, now=utcnow()
    )
    again = guidelines_service.acknowledge(
        db, project_id=project.id, version_id=pending.id, user=annotator, now=utcnow() + timedelta(hours=1)
    )
    assert again.id == first.id and again.acknowledged_at == first.acknowledged_at
    assert guidelines_service.pending_acknowledgement(db, project_id=project.id, user_id=annotator.id) is None
    assert (
        db.scalar(
            select(func.count())
            .select_from(GuidelineAcknowledgement)
            .where(GuidelineAcknowledgement.user_id == annotator.id)
        )
        == 1
    )


def test_the_version_in_force_is_the_newest_one_the_user_has_read(
    db: Session, admin: User, project: Project
) -> None:
    annotator = make_user_without_password(db)
    v1 = make_guideline_version(db, project, admin, body="one")
    assert guidelines_service.version_in_force(db, project_id=project.id, user_id=annotator.id) is None
    guidelines_service.acknowledge(db, project_id=project.id, version_id=v1.id, user=annotator, now=utcnow())
    make_guideline_version(db, project, admin, body="two")
    assert guidelines_service.version_in_force(db, project_id=project.id, user_id=annotator.id) == v1.id


def test_recalibration_since_is_the_newest_publish_that_asked_for_it(
    db: Session, admin: User, project: Project
) -> None:
    assert guidelines_service.recalibration_since(db, project_id=project.id) is None
    make_guideline_version(db, project, admin, body="one")
    assert guidelines_service.recalibration_since(db, project_id=project.id) is None
    v2 = make_guideline_version(db, project, admin, body="two", requires_recalibration=True)
    make_guideline_version(db, project, admin, body="three")
    assert guidelines_service.recalibration_since(db, project_id=project.id) == v2.published_at


def test_drafts_are_visible_to_admins_only(db: Session, admin: User, project: Project) -> None:
    researcher = make_user_without_password(db, Role.RESEARCHER)
    make_guideline_version(db, project, admin, body="one")
    draft = make_guideline_version(db, project, admin, body="secret draft", publish=False)
    assert [v.label for v in guidelines_service.list_versions(db, project_id=project.id, viewer=admin)] == [
        "draft",
        "v1",
    ]
    assert [
        v.label for v in guidelines_service.list_versions(db, project_id=project.id, viewer=researcher)
    ] == ["v1"]
    with pytest.raises(NotFound):
        guidelines_service.get_version(db, project_id=project.id, version_id=draft.id, viewer=researcher)
    with pytest.raises(NotFound):
        guidelines_service.get_version(db, project_id=make_project(db).id, version_id=draft.id, viewer=admin)
