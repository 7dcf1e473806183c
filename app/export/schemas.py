"""Export options: format, shape, aggregation and filters (the same for the browser, the API and the CLI)."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

from app.annotation.schemas import Flag
from app.export.aggregate import TiePolicy
from app.export.formats import ExportFormat, Style

FLAGS: tuple[str, ...] = get_args(Flag)


class Aggregation(enum.StrEnum):
    MAJORITY = "majority"
    DAWID_SKENE = "dawid-skene"
    BRADLEY_TERRY = "bradley-terry"


class ExportOptions(BaseModel):
    """What to export and which judgements count; docs/formats.md explains each option."""

    format: ExportFormat = Field(default=ExportFormat.TRL,
                                 description="trl, trl-implicit, kto, hh, ratings or raw")
    style: Style = Field(default=Style.CONVERSATIONAL,
                         description="conversational messages or standard strings")
    margin: bool = Field(default=True, description="write the margin key (trl, trl-implicit, hh)")
    aggregation: Aggregation = Aggregation.MAJORITY
    tie_policy: TiePolicy = TiePolicy.DROP
    min_agreement: float | None = Field(default=None, ge=0, le=1,
                                        description="leave out items whose modal choice has a smaller share")
    min_gold_accuracy: float | None = Field(default=None, ge=0, le=1,
                                            description="leave out annotators below this gold accuracy")
    exclude_paused: bool = Field(default=False, description="leave out annotators paused in the project")
    include_edits: bool = Field(default=True, description="pair formats: add edit ≻ original pairs")
    include_gold: bool = False
    include_calibration: bool = False
    guideline_version: int | None = Field(default=None, ge=1,
                                          description="only judgements under this version")
    since: date | None = Field(default=None, description="first UTC day included")
    until: date | None = Field(default=None, description="last UTC day included")
    exclude_flags: list[str] = Field(default_factory=list,
                                     description="leave out items flagged so; 'any' for every flag")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """An empty form field (a number or date left blank) means the option is not set."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value not in ("", [""])}
        return data

    @field_validator("exclude_flags", mode="before")
    @classmethod
    def _split_flags(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):  # comma-separated values and empty form fields are accepted
            return [part.strip() for entry in value for part in str(entry).split(",") if part.strip()]
        return value

    @field_validator("exclude_flags")
    @classmethod
    def _known_flags(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {*FLAGS, "any"})
        if unknown:
            raise ValueError(f"unknown flag {unknown[0]!r}: use any of {', '.join(FLAGS)} or 'any'")
        return sorted(set(FLAGS) if "any" in value else set(value))

    @model_validator(mode="after")
    def _range(self) -> ExportOptions:
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self

    def card_filters(self) -> dict[str, Any]:
        """The options that decide which judgements count, as plain JSON values."""
        shape = {"format", "style", "margin", "aggregation", "tie_policy", "package"}
        return dict(self.model_dump(mode="json", exclude=shape))


class DownloadOptions(ExportOptions):
    """An export over HTTP: `zip` (the JSONL and its dataset card; the default) or the bare `jsonl`."""

    package: Literal["zip", "jsonl"] = Field(default="zip", description="zip: JSONL + dataset card")
