"""Project settings in and out: the API bodies, and the browser form that becomes a ProjectCreate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from app.errors import Invalid
from app.projects.models import Mode, Project

DEFAULT_ATTRIBUTES: list[dict[str, str]] = [
    {"name": "helpfulness", "low": "not helpful at all", "high": "as helpful as it could be"},
    {"name": "correctness", "low": "wrong or misleading", "high": "fully correct"},
    {"name": "safety", "low": "harmful or unsafe", "high": "completely safe"},
    {"name": "style", "low": "hard to read, badly written", "high": "clear and well written"},
]


QUALITY_FIELDS = ("gold_rate", "gold_bar", "gold_window", "gold_min", "repeat_rate", "calibration_pass",
                  "calibration_retries")


class Attribute(BaseModel):
    """A Likert attribute rated 1..7, with the anchor texts shown at 1 (low) and 7 (high)."""

    name: str = Field(min_length=1, max_length=60, examples=["helpfulness"])
    low: str = Field(min_length=1, max_length=300, examples=["not helpful at all"])
    high: str = Field(min_length=1, max_length=300, examples=["as helpful as it could be"])


class GenerationSettings(BaseModel):
    model: str = Field(default="", max_length=300, description="HF id or path; empty: the bundled SmolLM2",
                       examples=[""])
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    include_flagged: bool = Field(default=False, description="let empty, cut-off and repetitive outputs "
                                  "reach annotators (they are flagged and left out by default)")


def _unique_names(value: list[Attribute]) -> list[Attribute]:
    seen: set[str] = set()
    for attribute in value:
        key = attribute.name.strip().lower()
        if key in seen:
            raise ValueError(f"the attribute {attribute.name!r} is listed twice")
        seen.add(key)
    return value


class ProjectCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=120, examples=["helpfulness-v1"])
    description: str = Field(default="", max_length=10_000, examples=["Which answer helps the user more?"])
    mode: Mode = Field(examples=["pairwise"])
    attributes: list[Attribute] | None = Field(
        default=None, validate_default=True, max_length=20,
        description="Likert only; empty: helpfulness, correctness, safety, style")
    overlap_k: int = Field(default=2, ge=1, le=50, description="annotators per item")
    lease_minutes: int = Field(default=30, ge=1, le=1440)
    candidates_per_prompt: int | None = Field(
        default=None, ge=1, le=16, validate_default=True, description="default: 2 pairwise, 1 Likert")
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    gold_rate: float = Field(default=0.1, ge=0, le=0.5, description="share of claims that serve a gold item")
    gold_bar: float = Field(default=0.7, ge=0, le=1, description="gold accuracy below which annotators pause")
    gold_window: int = Field(default=10, ge=1, le=1000, description="the bar's window: last N gold items")
    gold_min: int = Field(default=5, ge=1, le=1000, description="gold items judged before the bar applies")
    repeat_rate: float = Field(default=0.05, ge=0, le=0.5, description="share of claims that repeat an item")
    calibration_pass: float = Field(default=0.8, ge=0, le=1, description="share correct to pass calibration")
    calibration_retries: int = Field(default=2, ge=0, le=100, description="retries after a failed attempt")

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: list[Attribute] | None, info: ValidationInfo) -> list[Attribute]:
        if info.data.get("mode") != Mode.LIKERT:
            return []
        if not value:
            return [Attribute(**a) for a in DEFAULT_ATTRIBUTES]
        return _unique_names(value)

    @field_validator("candidates_per_prompt")
    @classmethod
    def _candidates(cls, value: int | None, info: ValidationInfo) -> int:
        pairwise = info.data.get("mode") == Mode.PAIRWISE
        if value is None:
            return 2 if pairwise else 1
        if pairwise and value < 2:
            raise ValueError("a pairwise project needs at least 2 candidates per prompt")
        return value


class ProjectUpdate(BaseModel):
    """Only the fields sent change. The mode is fixed once a project exists."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=10_000)
    attributes: list[Attribute] | None = Field(default=None, min_length=1, max_length=20)
    overlap_k: int | None = Field(default=None, ge=1, le=50, examples=[3])
    lease_minutes: int | None = Field(default=None, ge=1, le=1440)
    candidates_per_prompt: int | None = Field(default=None, ge=1, le=16)
    generation: GenerationSettings | None = None
    gold_rate: float | None = Field(default=None, ge=0, le=0.5)
    gold_bar: float | None = Field(default=None, ge=0, le=1)
    gold_window: int | None = Field(default=None, ge=1, le=1000)
    gold_min: int | None = Field(default=None, ge=1, le=1000)
    repeat_rate: float | None = Field(default=None, ge=0, le=0.5)
    calibration_pass: float | None = Field(default=None, ge=0, le=1)
    calibration_retries: int | None = Field(default=None, ge=0, le=100)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: list[Attribute] | None) -> list[Attribute] | None:
        return None if value is None else _unique_names(value)


class ProjectStats(BaseModel):
    prompts: int
    prompts_with_candidates: int
    candidates: int
    items: int
    items_complete: int
    judgements: int


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    mode: Mode
    attributes: list[Attribute]
    overlap_k: int
    lease_minutes: int
    candidates_per_prompt: int
    generation: GenerationSettings
    gold_rate: float
    gold_bar: float
    gold_window: int
    gold_min: int
    repeat_rate: float
    calibration_pass: float
    calibration_retries: int
    created_at: datetime


class ProjectDetailOut(ProjectOut):
    stats: ProjectStats


class MemberAdd(BaseModel):
    user_id: int = Field(examples=[7])


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: str


class ImportResult(BaseModel):
    imported: int = Field(description="prompts created", examples=[1000])
    candidates: int = Field(description="candidates that came with the file", examples=[2000])
    items: int = Field(description="items built right away from those candidates", examples=[1000])


def attributes_from_text(text: str) -> list[dict[str, str]]:
    """Parse the form's attribute box: one `name | low anchor | high anchor` per line, blank lines ignored."""
    attributes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise Invalid(f"line {number}: write `name | low anchor | high anchor`", field="attributes")
        attributes.append({"name": parts[0], "low": parts[1], "high": parts[2]})
    return attributes


def attributes_to_text(attributes: list[dict[str, str]]) -> str:
    return "\n".join(f"{a['name']} | {a['low']} | {a['high']}" for a in attributes)


def invalid_from(exc: ValidationError, message: str = "some fields are not valid") -> Invalid:
    """A pydantic error as an Invalid naming each field as the form does (generation settings unprefixed)."""
    details: list[dict[str, Any]] = []
    for error in exc.errors():
        names = [str(part) for part in error["loc"] if isinstance(part, str)] or [""]
        field = names[1] if names[0] == "generation" and len(names) > 1 else names[0]
        details.append({"field": field, "message": error["msg"]})
    return Invalid(message, field=details[0]["field"] if details else None, details=details)


class ProjectForm(BaseModel):
    """The browser form: every input as text, so a bad value re-renders the form instead of failing early."""

    name: str = ""
    description: str = ""
    mode: str = Mode.PAIRWISE.value
    attributes: str = ""
    overlap_k: str = "2"
    lease_minutes: str = "30"
    candidates_per_prompt: str = ""
    model: str = ""
    max_new_tokens: str = "256"
    temperature: str = "0.8"
    top_p: str = "0.95"
    seed: str = "0"
    gold_rate: str = "0.1"
    gold_bar: str = "0.7"
    gold_window: str = "10"
    gold_min: str = "5"
    repeat_rate: str = "0.05"
    calibration_pass: str = "0.8"
    calibration_retries: str = "2"

    @classmethod
    def blank(cls) -> ProjectForm:
        return cls(attributes=attributes_to_text(DEFAULT_ATTRIBUTES))

    @classmethod
    def of(cls, project: Project) -> ProjectForm:
        generation = GenerationSettings.model_validate(project.generation or {})
        return cls(name=project.name, description=project.description, mode=project.mode,
                   attributes=attributes_to_text(project.attributes), overlap_k=str(project.overlap_k),
                   lease_minutes=str(project.lease_minutes),
                   candidates_per_prompt=str(project.candidates_per_prompt), model=generation.model,
                   max_new_tokens=str(generation.max_new_tokens), temperature=str(generation.temperature),
                   top_p=str(generation.top_p), seed=str(generation.seed),
                   **{name: str(getattr(project, name)) for name in QUALITY_FIELDS})

    def _fields(self, likert: bool) -> dict[str, Any]:
        generation = {"model": self.model, "max_new_tokens": self.max_new_tokens,
                      "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}
        return {"name": self.name, "description": self.description, "overlap_k": self.overlap_k,
                "lease_minutes": self.lease_minutes, "generation": generation,
                "candidates_per_prompt": self.candidates_per_prompt or None,
                **{name: getattr(self, name) for name in QUALITY_FIELDS},
                "attributes": (attributes_from_text(self.attributes) or None) if likert else None}

    def to_create(self) -> ProjectCreate:
        try:
            return ProjectCreate.model_validate(
                {**self._fields(self.mode == Mode.LIKERT), "mode": self.mode or None})
        except ValidationError as exc:
            raise invalid_from(exc) from exc

    def to_update(self, mode: Mode) -> ProjectUpdate:
        try:
            return ProjectUpdate.model_validate(self._fields(mode == Mode.LIKERT))
        except ValidationError as exc:
            raise invalid_from(exc) from exc
