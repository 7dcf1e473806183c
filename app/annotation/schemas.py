"""What annotators send and see: a submission (JSON or browser form) and an item in shown order."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.annotation.models import Judgement
from app.assignment import policy
from app.errors import Invalid

Flag = Literal["unsafe", "hallucination", "refusal", "broken"]
ShownChoice = Literal["a", "b", "tie", "both_bad"]
MAX_SECONDS = 86_400.0
MAX_EDIT_CHARS = 20_000
RATING_PREFIX = "rating_"
_TEXT_FIELDS = frozenset({"choice", "strength", "rationale", "seconds", "idempotency_key"})


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class JudgementIn(BaseModel):
    """One submission. `choice` is on the SHOWN sides: "a" is the first (left) response, "b" the second.

    Pairwise items need `choice`, and `strength` when the choice is a or b (1 slightly, 2 clearly,
    3 much better; ignored for tie and both_bad). Likert items need `ratings`: 1-7 for every attribute of
    the project. Sending the same `idempotency_key` again returns the stored judgement.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"choice": "a", "strength": 2, "rationale": "B invents a citation.", "flags": ["hallucination"],
         "seconds": 41.5, "idempotency_key": "4b3f0c1e9a8d4e1f8b2a6c7d5e9f0a1b"},
        {"ratings": {"helpfulness": 6, "correctness": 4}, "seconds": 20,
         "idempotency_key": "9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a"},
    ]})

    choice: ShownChoice | None = None
    strength: int | None = Field(default=None, ge=1, le=3)
    rationale: str = Field(default="", max_length=5000)
    flags: list[Flag] = Field(default_factory=list, max_length=16)
    ratings: dict[str, int] = Field(default_factory=dict, max_length=64)
    seconds: float | None = Field(default=None, description="time on task; clamped to [0, 86400]")
    idempotency_key: str = Field(default_factory=new_idempotency_key, min_length=8, max_length=64,
                                 pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("flags")
    @classmethod
    def _unique_flags(cls, flags: list[Flag]) -> list[Flag]:
        return sorted(set(flags))

    @field_validator("seconds")
    @classmethod
    def _clamp_seconds(cls, seconds: float | None) -> float | None:
        if seconds is None or not math.isfinite(seconds):
            return None
        return min(max(seconds, 0.0), MAX_SECONDS)


class WorkspaceForm(BaseModel):
    """The browser form as sent, all text: kept to re-render the item with the annotator's choices.

    HTML forms repeat "flags" and carry one "rating_<attribute>" field per project attribute, which a
    fixed set of Form() fields cannot express, so the route reads the parsed form and calls from_pairs.
    """

    choice: str = ""
    strength: str = ""
    rationale: str = ""
    flags: list[str] = Field(default_factory=list)
    ratings: dict[str, str] = Field(default_factory=dict)
    seconds: str = ""
    idempotency_key: str = ""

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, object]]) -> WorkspaceForm:
        fields: dict[str, str] = {}
        flags: list[str] = []
        ratings: dict[str, str] = {}
        for key, value in pairs:
            if not isinstance(value, str):
                continue  # a file part: nothing in this form takes one
            if key == "flags":
                flags.append(value)
            elif key.startswith(RATING_PREFIX):
                ratings[key.removeprefix(RATING_PREFIX)] = value
            elif key in _TEXT_FIELDS:
                fields[key] = value
        return cls(**fields, flags=flags, ratings=ratings)

    def to_judgement(self) -> JudgementIn:
        """Parsed and checked; Invalid (with the form field to blame) when a value is malformed."""
        data: dict[str, object] = {
            "choice": self.choice or None, "strength": self.strength or None, "rationale": self.rationale,
            "flags": self.flags, "ratings": self.ratings, "seconds": self.seconds or None,
        }
        if self.idempotency_key:
            data["idempotency_key"] = self.idempotency_key
        try:
            return JudgementIn.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = [str(part) for part in first["loc"]]
            field = RATING_PREFIX + loc[1] if loc[0] == "ratings" and len(loc) > 1 else loc[0]
            raise Invalid(f"{field}: {first['msg']}", field=field) from exc


class Message(BaseModel):
    role: str
    content: str


class ShownResponse(BaseModel):
    side: Literal["a", "b"] = Field(description='"a" is shown first (left), "b" second (right)')
    text: str


class Attribute(BaseModel):
    name: str
    low: str = Field(default="", description="what a 1 means")
    high: str = Field(default="", description="what a 7 means")


class ItemOut(BaseModel):
    """An item as this annotator sees it: responses in SHOWN order, no candidate ids."""

    lease_id: int
    item_id: int
    kind: Literal["pair", "single"]
    prompt: list[Message]
    responses: list[ShownResponse]
    attributes: list[Attribute]
    expires_at: datetime
    idempotency_key: str = Field(description="a fresh key to send back with the judgement")


class JudgementOut(BaseModel):
    """A stored judgement: `choice` is CANONICAL (candidate order); `shown_choice` is what was clicked."""

    id: int
    lease_id: int
    item_id: int
    choice: str | None
    shown_choice: str | None
    strength: int | None
    swapped: bool
    rationale: str
    flags: list[str]
    ratings: dict[str, int]
    seconds: float | None
    idempotency_key: str
    created_at: datetime

    @classmethod
    def of(cls, judgement: Judgement) -> JudgementOut:
        """From a judgement whose ratings are loaded."""
        choice = str(judgement.choice) if judgement.choice is not None else None
        return cls(
            id=judgement.id, lease_id=judgement.lease_id, item_id=judgement.item_id, choice=choice,
            shown_choice=policy.to_shown(choice, judgement.swapped) if choice else None,
            strength=judgement.strength, swapped=judgement.swapped, rationale=judgement.rationale,
            flags=list(judgement.flags), ratings={r.attribute: r.value for r in judgement.ratings},
            seconds=judgement.seconds, idempotency_key=judgement.idempotency_key,
            created_at=judgement.created_at,
        )


class EditIn(BaseModel):
    """A direct edit: `side` as SHOWN ("a" = the first, left response; a Likert item has only "a") and
    the whole improved text."""

    side: Literal["a", "b"] = "a"
    text: str = Field(min_length=1, max_length=MAX_EDIT_CHARS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("write the improved response")
        return text.replace("\r\n", "\n").strip()


class EditOut(BaseModel):
    """The stored edit: the new candidate, the one it improves, and the size of the change in lines."""

    candidate_id: int
    original_id: int
    side: str
    lines_added: int
    lines_removed: int
