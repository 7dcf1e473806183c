"""The admin quality dashboard and the agreement / annotator standing JSON API: thin routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.agreement import charts, report
from app.agreement import dashboard as dashboard_service
from app.agreement import service as agreement_service
from app.agreement.schemas import AgreementOut, AgreementQuery, AnnotatorsOut, StandingQuery
from app.agreement.service import Filters
from app.web.deps import AdminDep, ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render_page_or_fragment

router = APIRouter(tags=["agreement"])
api = APIRouter(tags=["agreement"])

COLUMN_LABELS = {
    "annotator": "Annotator", "judgements": "Judgements", "agreement": "Agrees with others",
    "kappa": "\N{GREEK SMALL LETTER KAPPA} vs others", "left_share": "Left chosen", "left_p": "Bias p",
    "median_seconds": "Median seconds", "fast_share": "Too fast", "repeats": "Repeats",
    "self_consistency": "Self-consistency", "gold_accuracy": "Gold accuracy", "status": "Status",
}
THROUGHPUT_FORMAT = {"hour": "%d %b %H:00", "day": "%d %b", "week": "week of %d %b %Y"}


def _charts(data: dashboard_service.Dashboard) -> dict[str, charts.Chart]:
    """The dashboard's SVG charts: throughput, and the primary agreement measure of each attribute."""
    unit = data.throughput.unit
    bars = [(start.strftime(THROUGHPUT_FORMAT[unit]), count)
            for start, count in zip(data.throughput.starts, data.throughput.counts, strict=True)]
    built = {"throughput": charts.bar_chart(
        bars, chart_id="chart-throughput", title=f"Judgements per {unit}",
        desc=f"{sum(data.throughput.counts)} judgements in {len(bars)} {unit}s")}
    for i, attribute in enumerate(data.agreement.attributes):
        points = [charts.BandPoint(b.start.strftime("%d %b %Y"), b.estimate.value, b.estimate.low,
                                   b.estimate.high) for b in attribute.over_time]
        label = report.METRIC_LABELS[attribute.primary]
        built[attribute.attribute] = charts.line_chart(
            points, chart_id=f"chart-agreement-{i}", title=f"{label} of {attribute.attribute} per "
            f"{data.agreement.bucket}", desc=f"{len(points)} {data.agreement.bucket}s; the band is the 95% "
            "bootstrap interval; an item counts in the period of its newest judgement")
    return built


@router.get("/projects/{project_id}/dashboard", name="agreement:dashboard")
def dashboard_page(request: Request, query: Annotated[StandingQuery, Query()], project: ProjectDep,
                   admin: AdminDep, session: SessionDep) -> Response:
    data = dashboard_service.dashboard(
        session, project=project, query=query, cache=agreement_service.CACHE,
        extra_columns=agreement_service.extra_columns(session, project=project))
    context = {"project": project, "data": data, "query": query, "charts": _charts(data),
               "labels": COLUMN_LABELS, "metric_labels": report.METRIC_LABELS}
    return render_page_or_fragment(request, page="agreement/dashboard.html",
                                   fragment="agreement/_dashboard.html", context=context)


@api.get("/projects/{project_id}/agreement", name="agreement:api_agreement", response_model=AgreementOut)
def api_agreement(query: Annotated[AgreementQuery, Query()], project: ProjectDep, user: ResearcherDep,
                  session: SessionDep) -> AgreementOut:
    """Every agreement measure per attribute with its 95% bootstrap interval over items, and the primary
    measure over time, for the regular items' judgements (repeats left out) within the filters."""
    return agreement_service.agreement(session, project=project, filters=Filters.of(query),
                                       bucket=query.bucket, cache=agreement_service.CACHE)


@api.get("/projects/{project_id}/annotators", name="agreement:api_annotators", response_model=AnnotatorsOut)
def api_annotators(query: Annotated[StandingQuery, Query()], project: ProjectDep, user: ResearcherDep,
                   session: SessionDep) -> AnnotatorsOut:
    """Each annotator's standing: agreement with the others, position bias, time on task, self-consistency."""
    return agreement_service.standings(
        session, project=project, filters=Filters.of(query), fast_seconds=query.fast_seconds, sort=query.sort,
        order=query.order, extra_columns=agreement_service.extra_columns(session, project=project),
        cache=agreement_service.CACHE)
