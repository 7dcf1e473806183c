"""Guidelines in and out: the editor form, the API bodies, versions, diffs and the acknowledgement gate."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.guidelines import diff
from app.guidelines.models import GuidelineVersion

MAX_BODY = 200_000
MAX_SUMMARY = 2_000
DiffMode = Literal["unified", "side_by_side"]


class DraftForm(BaseModel):
    """The editor as submitted: saved, previewed or published (nothing is checked until publishing)."""

    body: str = Field(default="", max_length=MAX_BODY)
    summary: str = Field(default="", max_length=MAX_SUMMARY)
    requires_recalibration: bool = False


class DraftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "# Guidelines\n\nPrefer the answer that is **correct** over the one that is longer."},
        {},
    ]})

    body: str | None = Field(default=None, max_length=MAX_BODY,
                             description="the draft's markdown; omitted: a copy of the active version")


class DraftUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "# Guidelines\n\nA tie means both answers are equally good *or* equally bad."},
    ]})

    body: str = Field(max_length=MAX_BODY)


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"summary": "Ties: both equally good or equally bad.", "requires_recalibration": False},
        {"summary": "New rule on refusals; everyone recalibrates.", "requires_recalibration": True,
         "body": "# Guidelines\n\nA refusal of a harmless request is worse than a mediocre answer."},
    ]})

    summary: str = Field(max_length=MAX_SUMMARY, description="what changed, for annotators (required)")
    requires_recalibration: bool = Field(default=False,
                                         description="everyone must pass calibration again before real work")
    body: str | None = Field(default=None, max_length=MAX_BODY,
                             description="save this markdown first; omitted: publish the draft as stored")


class VersionSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    number: int | None = Field(description="1, 2, ... once published; null for the draft")
    label: str = Field(examples=["v3", "draft"])
    is_draft: bool
    summary: str
    requires_recalibration: bool
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    published_by_id: int | None


class VersionOut(VersionSummaryOut):
    body: str = Field(description="markdown; render it through a sanitizer")


class DiffLineOut(BaseModel):
    kind: diff.LineKind
    text: str
    old: int | None
    new: int | None


class DiffRowOut(BaseModel):
    kind: diff.RowKind
    left: str | None
    right: str | None
    left_no: int | None
    right_no: int | None


class DiffOut(BaseModel):
    """Exactly one of `lines` (unified) or `rows` (side_by_side) is filled, by `mode`."""

    old: VersionSummaryOut
    new: VersionSummaryOut
    mode: DiffMode
    added: int
    removed: int
    lines: list[DiffLineOut] = Field(default_factory=list)
    rows: list[DiffRowOut] = Field(default_factory=list)


class AcknowledgementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version_id: int
    user_id: int
    acknowledged_at: datetime


class AcknowledgementRequired(BaseModel):
    """The 409 body of the next-item route while a published version waits for the caller to read it."""

    detail: str
    guideline_version: VersionSummaryOut
    acknowledge_url: str = Field(description="POST here (no body) once the guidelines have been read")

    @classmethod
    def of(cls, version: GuidelineVersion) -> AcknowledgementRequired:
        return cls(
            detail=f"new guidelines ({version.label}) were published: read and acknowledge them first",
            guideline_version=VersionSummaryOut.model_validate(version),
            acknowledge_url=(f"/api/v1/projects/{version.project_id}/guidelines/versions/{version.id}"
                             "/acknowledge"),
        )


class PendingOut(BaseModel):
    pending: VersionSummaryOut | None = Field(description="the version the caller must acknowledge, if any")


def diff_out(old: GuidelineVersion, new: GuidelineVersion, mode: DiffMode) -> DiffOut:
    counts = diff.stats(old.body, new.body)
    out = DiffOut(old=VersionSummaryOut.model_validate(old), new=VersionSummaryOut.model_validate(new),
                  mode=mode, added=counts.added, removed=counts.removed)
    if mode == "unified":
        out.lines = [DiffLineOut(**asdict(line)) for line in diff.unified(old.body, new.body)]
    else:
        out.rows = [DiffRowOut(**asdict(row)) for row in diff.side_by_side(old.body, new.body)]
    return out
