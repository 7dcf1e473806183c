"""Gold and calibration in and out: answer keys, standings, calibration items, feedback and attempts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.errors import Invalid

LIKERT_MIN, LIKERT_MAX = 1, 7
RANGE_PREFIXES = ("min_", "max_")


class GoldAnswerIn(BaseModel):
    """An item's expected answer: `choice` for a pair, `ranges` for a Likert single; `purpose` gold hides
    the item among the regular work, calibration keeps it for qualification sessions."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"purpose": "gold", "choice": "a", "explanation": "B invents a **citation**."},
        {"purpose": "calibration", "ranges": {"helpfulness": [5, 7], "correctness": [1, 2]},
         "explanation": "Helpful tone, but the date is wrong."},
    ]})

    purpose: Literal["gold", "calibration"]
    choice: Literal["a", "b", "tie"] | None = Field(
        default=None, description='pairs: the better candidate, canonical ("a" = candidate_a), or tie')
    ranges: dict[str, tuple[int, int]] = Field(
        default_factory=dict, max_length=64,
        description="Likert: acceptable [min, max] per attribute (1-7); attributes left out accept any")
    explanation: str = Field(default="", max_length=20_000, description="markdown, shown after calibration")

    @field_validator("ranges")
    @classmethod
    def _ordered(cls, ranges: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for name, (low, high) in ranges.items():
            if not LIKERT_MIN <= low <= high <= LIKERT_MAX:
                raise ValueError(f"{name}: a range needs 1 <= min <= max <= 7")
        return ranges

    @model_validator(mode="after")
    def _one_kind(self) -> GoldAnswerIn:
        if self.choice is not None and self.ranges:
            raise ValueError("give a choice (pairs) or ranges (Likert), not both")
        return self


class GoldAnswerForm(BaseModel):
    """The browser form as sent, all text; "min_<attribute>" and "max_<attribute>" carry the ranges."""

    purpose: str = "gold"
    choice: str = ""
    explanation: str = ""
    bounds: dict[str, dict[str, str]] = Field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, object]]) -> GoldAnswerForm:
        fields: dict[str, str] = {}
        bounds: dict[str, dict[str, str]] = {}
        for key, value in pairs:
            if not isinstance(value, str):
                continue
            if key.startswith(RANGE_PREFIXES):
                end, name = key.split("_", 1)
                if value.strip():
                    bounds.setdefault(name, {})[end] = value.strip()
            elif key in ("purpose", "choice", "explanation"):
                fields[key] = value
        return cls(**fields, bounds=bounds)

    def to_answer(self) -> GoldAnswerIn:
        """Parsed and checked; Invalid naming the field when a value is malformed or a range half given."""
        ranges: dict[str, list[str]] = {}
        for name, ends in self.bounds.items():
            if set(ends) != {"min", "max"}:
                raise Invalid(f"{name}: give both a minimum and a maximum, or neither", field=f"min_{name}")
            ranges[name] = [ends["min"], ends["max"]]
        try:
            return GoldAnswerIn.model_validate({"purpose": self.purpose, "choice": self.choice or None,
                                                "ranges": ranges, "explanation": self.explanation})
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = [str(p) for p in first["loc"]]
            field = loc[0] if loc else ""
            if field == "ranges" and len(loc) > 1:
                field = f"min_{loc[1]}"
            raise Invalid(f"{field or 'answer'}: {first['msg']}", field=field or None) from exc


class GoldItemOut(BaseModel):
    """An item with its expected answer (admins and researchers only: annotators never see these)."""

    item_id: int
    purpose: Literal["gold", "calibration"]
    kind: Literal["pair", "single"]
    choice: str | None
    ranges: dict[str, tuple[int, int]]
    explanation: str
    updated_at: datetime


class PauseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, examples=["rushing: 40 items in 5 minutes"])


class StandingOut(BaseModel):
    """An annotator's standing in a project. Accuracies are None until a gold item was judged."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int
    username: str
    status: Literal["active", "paused"]
    reason: str
    changed_at: datetime | None
    changed_by_id: int | None = Field(description="who paused or resumed; null with a pause: automatic")
    gold_correct: int
    gold_total: int
    gold_accuracy: float | None
    recent_correct: int = Field(description="correct gold answers in the window that decides a pause")
    recent_total: int
    recent_accuracy: float | None
    calibration_passed: bool
    calibration_state: Literal["passed", "due", "blocked", "not_required"]
    calibration_attempts: int


class Turn(BaseModel):
    role: str
    content: str


class ShownSide(BaseModel):
    side: Literal["a", "b"] = Field(description='"a" is shown first (left), "b" second (right)')
    text: str


class AttributeOut(BaseModel):
    name: str
    low: str = ""
    high: str = ""


class CalibrationItemOut(BaseModel):
    """A calibration item as this annotator sees it: responses in SHOWN order."""

    attempt_id: int
    item_id: int
    position: int = Field(description="1-based position of this item in the attempt")
    of: int
    kind: Literal["pair", "single"]
    prompt: list[Turn]
    responses: list[ShownSide]
    attributes: list[AttributeOut]


class CalibrationAnswerIn(BaseModel):
    """An answer on the SHOWN sides ("a" = first response); Likert items take `ratings`, 1-7 each."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"choice": "b", "strength": 2}, {"ratings": {"helpfulness": 6, "correctness": 2}}]})

    choice: Literal["a", "b", "tie", "both_bad"] | None = None
    strength: int | None = Field(default=None, ge=1, le=3)
    ratings: dict[str, int] = Field(default_factory=dict, max_length=64)


class AttemptOut(BaseModel):
    id: int
    user_id: int
    username: str
    number: int
    started_at: datetime
    finished_at: datetime | None
    answered: int
    of: int
    correct: int
    total: int
    score: float | None
    pass_mark: float
    passed: bool | None
    retries_left: int = Field(description="attempts left if this one fails (an admin may grant more)")


class AttemptAnswerOut(BaseModel):
    item_id: int
    choice: str | None = Field(description="canonical (candidate order)")
    shown_choice: str | None
    strength: int | None
    swapped: bool
    ratings: dict[str, int]
    correct: bool
    created_at: datetime


class AttemptDetailOut(AttemptOut):
    answers: list[AttemptAnswerOut]


class FeedbackOut(BaseModel):
    """After each calibration item: the expected answer (SHOWN sides), the explanation, and progress."""

    item_id: int
    correct: bool
    your_choice: str | None
    your_ratings: dict[str, int]
    expected_choice: str | None = Field(description='on the SHOWN sides: "a" = first response, or tie')
    expected_ranges: dict[str, tuple[int, int]]
    explanation: str = Field(description="markdown")
    attempt: AttemptOut


class GateOut(BaseModel):
    """Why no item is served: paused, calibration due (answer attempt `calibration_attempt_id`), blocked."""

    detail: str
    status: Literal["paused", "calibration", "blocked"]
    reason: str
    calibration_attempt_id: int | None = None


class CalibrationForm(BaseModel):
    """The browser form of a calibration item, as sent (all text), kept to re-render it after a mistake."""

    choice: str = ""
    strength: str = ""
    ratings: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, object]]) -> CalibrationForm:
        fields: dict[str, str] = {}
        ratings: dict[str, str] = {}
        for key, value in pairs:
            if not isinstance(value, str):
                continue
            if key.startswith("rating_"):
                ratings[key.removeprefix("rating_")] = value
            elif key in ("choice", "strength"):
                fields[key] = value
        return cls(**fields, ratings=ratings)

    def to_answer(self) -> CalibrationAnswerIn:
        try:
            return CalibrationAnswerIn.model_validate({"choice": self.choice or None,
                                                       "strength": self.strength or None,
                                                       "ratings": self.ratings})
        except ValidationError as exc:
            loc = [str(p) for p in exc.errors()[0]["loc"]]
            field = f"rating_{loc[1]}" if loc[0] == "ratings" and len(loc) > 1 else loc[0]
            raise Invalid(f"{field}: {exc.errors()[0]['msg']}", field=field) from exc
