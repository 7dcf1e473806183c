"""The admin dashboard page and the agreement / annotator JSON API over HTTP, with their role checks."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.agreement import service as agreement_service
from tests.agreement.conftest import XSS, Voted
from tests.factories import bearer, login, make_project
from tests.factories import make_user_without_password as make_user


def dashboard_url(voted: Voted) -> str:
    return f"/projects/{voted.project.id}/dashboard"


def test_admin_sees_progress_charts_agreement_annotators_and_flags(app_client: TestClient, db: Session,
                                                                    voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    response = app_client.get(dashboard_url(voted))
    assert response.status_code == 200
    page = response.text
    assert response.headers["vary"] == "HX-Request"
    assert '<progress id="progress-items" class="progress" max="4" value="3">' in page
    assert '<progress id="progress-votes" class="progress" max="12" value="11">' in page
    assert page.count("<svg") == 2 and 'role="img"' in page and "<polygon" in page  # throughput, agreement
    assert "Krippendorff" in page and "Percent agreement without ties" in page
    for annotator in voted.annotators:
        assert annotator.username in page
    assert "refusal" in page and "1</span></h2>" in page  # one flagged judgement
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert " style=" not in page and "<script>" not in page.split("</head>", 1)[1]


def test_the_project_page_links_to_the_dashboard_for_admins_only(app_client: TestClient, db: Session,
                                                                 voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    assert dashboard_url(voted) in app_client.get(f"/projects/{voted.project.id}").text
    login(app_client, db, voted.researcher)
    assert dashboard_url(voted) not in app_client.get(f"/projects/{voted.project.id}").text


def _row_order(page: str, voted: Voted) -> list[int]:
    table = page.split('id="annotator-table"', 1)[1].split("</table>", 1)[0]
    positions = {a.id: table.index(f"<code>{a.username}</code>") for a in voted.annotators}
    return sorted(positions, key=lambda user_id: positions[user_id])


def test_annotator_table_sorts_on_the_server_by_query_parameters(app_client: TestClient, db: Session,
                                                                 voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    u1, u2, u3 = (a.id for a in voted.annotators)
    page = app_client.get(dashboard_url(voted), params={"sort": "agreement", "order": "asc"}).text
    assert _row_order(page, voted) == [u3, u1, u2]
    assert 'aria-sort="ascending"' in page
    # the active column's link flips the order; the others keep the filters and sort descending first
    assert re.search(r'href="[^"]*sort=agreement&amp;order=desc"', page)
    assert re.search(r'href="[^"]*sort=median_seconds&amp;order=desc"', page)
    page = app_client.get(dashboard_url(voted), params={"sort": "median_seconds", "order": "desc"}).text
    assert _row_order(page, voted) == [u3, u1, u2]  # 20 s, 15 s, 12 s


def test_htmx_requests_get_the_fragment_only(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    response = app_client.get(dashboard_url(voted), params={"sort": "kappa", "order": "desc"},
                              headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="annotator-table"' in response.text


def test_filters_apply_to_the_page(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    page = app_client.get(dashboard_url(voted), params={"since": "2027-01-01", "until": "",
                                                        "guideline_version": ""}).text
    assert "No judgements yet." in page and "No flagged judgements." in page
    page = app_client.get(dashboard_url(voted), params={"guideline_version": str(voted.version_id)}).text
    assert f'<option value="{voted.version_id}" selected>' in page and "(6 judgements)" in page


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
    ({"sort": "shoe_size"}, "sort"),
    ({"fast_seconds": "-1"}, "fast_seconds"),
    ({"bucket": "month"}, "bucket"),
])
def test_bad_filters_are_a_clear_422(app_client: TestClient, db: Session, voted: Voted,
                                     params: dict[str, str], field: str) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    response = app_client.get(dashboard_url(voted), params=params)
    assert response.status_code == 422
    api = app_client.get(f"/api/v1/projects/{voted.project.id}/annotators", params=params,
                         headers=bearer(db, voted.researcher))
    assert api.status_code == 422
    assert [e["field"] for e in api.json()["errors"]] == [field]


def test_only_admins_see_the_dashboard(app_client: TestClient, db: Session, voted: Voted) -> None:
    assert app_client.get(dashboard_url(voted)).status_code == 303  # to the login page
    for user in (voted.researcher, voted.annotators[0], make_user(db, Role.ANNOTATOR)):
        login(app_client, db, user)
        assert app_client.get(dashboard_url(voted)).status_code == 403


def test_api_agreement_for_researchers(app_client: TestClient, db: Session, voted: Voted) -> None:
    url = f"/api/v1/projects/{voted.project.id}/agreement"
    response = app_client.get(url, params={"bucket": "day"}, headers=bearer(db, voted.researcher))
    assert response.status_code == 200
    body = response.json()
    expected = agreement_service.agreement(db, project=voted.project, bucket="day")
    assert body == expected.model_dump(mode="json")
    (preference,) = body["attributes"]
    assert set(preference["metrics"]) >= {"alpha_nominal", "alpha_interval", "fleiss_kappa", "gwet_ac1",
                                          "percent_agreement", "percent_agreement_no_ties"}
    assert [b["estimate"]["n_items"] for b in preference["over_time"]] == [2, 2]
    filtered = app_client.get(url, params={"since": "2026-01-06"}, headers=bearer(db, voted.researcher))
    assert filtered.json()["attributes"][0]["judgements"] == 5


def test_api_annotators_for_researchers(app_client: TestClient, db: Session, voted: Voted) -> None:
    url = f"/api/v1/projects/{voted.project.id}/annotators"
    response = app_client.get(url, params={"sort": "agreement", "order": "desc", "fast_seconds": "11"},
                              headers=bearer(db, voted.researcher))
    assert response.status_code == 200
    body = response.json()
    assert body["sort"] == "agreement" and body["fast_seconds"] == 11.0
    rows = body["annotators"]
    assert [row["agreement"] for row in rows] == [1.0, 1.0, 0.5]
    first = next(row for row in rows if row["user_id"] == voted.annotators[0].id)
    assert first["fast_share"] == 0.5 and first["self_consistency"] == 1.0 and first["left_p"] == 1.0


def test_api_role_and_membership_checks(app_client: TestClient, db: Session, voted: Voted) -> None:
    for path in ("agreement", "annotators"):
        url = f"/api/v1/projects/{voted.project.id}/{path}"
        assert app_client.get(url).status_code == 401
        assert app_client.get(url, headers=bearer(db, voted.annotators[0])).status_code == 403
        outsider = make_user(db, Role.RESEARCHER)
        assert app_client.get(url, headers=bearer(db, outsider)).status_code == 403
        assert app_client.get(url, headers=bearer(db, make_user(db, Role.ADMIN))).status_code == 200
        assert app_client.get(f"/api/v1/projects/999999/{path}",
                              headers=bearer(db, make_user(db, Role.ADMIN))).status_code == 404


def test_empty_project(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/dashboard")
    assert page.status_code == 200 and "No judgements yet." in page.text
    body = app_client.get(f"/api/v1/projects/{project.id}/agreement", headers=bearer(db, admin)).json()
    assert body["attributes"][0]["metrics"]["alpha_nominal"] == {"value": None, "low": None, "high": None,
                                                                 "n_items": 0}
