"""Agreement request filters and the JSON shapes of agreement, annotator standing and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

BucketChoice = Literal["auto", "day", "week"]
Order = Literal["asc", "desc"]
ColumnValue = float | str | None


class AgreementQuery(BaseModel):
    """Which judgements count: made under one guideline version, and/or within a date range (UTC days,
    both ends included). Empty form fields mean "no filter"."""

    guideline_version: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                          description="guideline version id")
    since: date | None = Field(default=None, description="first day included (UTC)", examples=["2026-01-01"])
    until: date | None = Field(default=None, description="last day included (UTC)", examples=["2026-01-31"])
    bucket: BucketChoice = Field(default="auto", description="agreement over time by day or week; "
                                                              "auto: weeks when the data spans over 90 days")

    @field_validator("guideline_version", "since", "until", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("until")
    @classmethod
    def _until_after_since(cls, until: date | None, info: ValidationInfo) -> date | None:
        since = info.data.get("since")
        if until is not None and since is not None and until < since:
            raise ValueError("the last day comes before the first day")
        return until


class StandingQuery(AgreementQuery):
    sort: str = Field(default="annotator", max_length=40,
                      description="column to sort by: annotator, judgements, agreement, kappa, left_share, "
                                  "left_p, median_seconds, fast_share, repeats, self_consistency")
    order: Order = "asc"
    fast_seconds: float = Field(default=3.0, gt=0, le=3600,
                                description="judgements faster than this count as implausibly fast")


class EstimateOut(BaseModel):
    value: float | None = Field(description="None when undefined (too few values, or only one value used)")
    low: float | None = Field(description="95% bootstrap percentile interval over items")
    high: float | None
    n_items: int = Field(description="items with at least two values")


class BucketOut(BaseModel):
    start: datetime = Field(description="start of the day or week (UTC); an item falls in the bucket of "
                                        "its newest counted judgement")
    estimate: EstimateOut


class AttributeAgreement(BaseModel):
    attribute: str = Field(description='"preference" for pairwise projects, else the Likert attribute')
    judgements: int = Field(description="counted judgements with a value on this attribute")
    primary: str = Field(description="the metric shown over time")
    metrics: dict[str, EstimateOut]
    over_time: list[BucketOut]


class FiltersOut(BaseModel):
    guideline_version: int | None
    since: date | None
    until: date | None


class AgreementOut(BaseModel):
    project_id: int
    mode: str
    filters: FiltersOut
    bucket: Literal["day", "week"]
    confidence: float = 0.95
    bootstrap_resamples: int
    attributes: list[AttributeAgreement]


class AnnotatorOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    judgements: int = Field(description="counted: regular items, no repeats, within the filters")
    agreement: float | None = Field(description="share agreeing with the other annotators' majority")
    kappa: float | None = Field(description="Cohen's kappa against that majority (quadratic for Likert)")
    left_share: float | None = Field(description="pairwise: share of a/b choices for the left response")
    left_p: float | None = Field(description="exact two-sided binomial test of left_share against 0.5")
    median_seconds: float | None
    fast_share: float | None = Field(description="share of timed judgements under fast_seconds")
    repeats: int = Field(description="repeat judgements matched with the original judgement")
    self_consistency: float | None = Field(description="share of repeats that gave the original answer")
    extra: dict[str, ColumnValue] = Field(default_factory=dict,
                                          description="columns from other domains, e.g. gold_accuracy")


class AnnotatorsOut(BaseModel):
    project_id: int
    filters: FiltersOut
    fast_seconds: float
    sort: str
    order: Order
    columns: list[str]
    annotators: list[AnnotatorOut]
