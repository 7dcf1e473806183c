from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class ScoreInput(BaseModel):
    """One candidate as the reward model reads it: the rendered prompt and the rendered response."""

    candidate_id: int
    prompt: str
    response: str


class Disagreement(BaseModel):
    """A pair the reward model ranks against the human majority, `confidence` = sigmoid(|Δr|)."""

    item_id: int
    prompt: str
    text_a: str
    text_b: str
    reward_a: float
    reward_b: float
    votes_a: int
    votes_b: int
    human_choice: str  # "a" or "b"
    model_choice: str
    confidence: float


class TrainingForm(BaseModel):
    """What a researcher picks on the training page (or posts to the API); the bounds keep a run sane."""

    base_model: ShortText = ""
    max_length: int = Field(default=256, ge=16, le=4096)
    learning_rate: float = Field(default=5e-5, gt=0, le=1.0)
    epochs: int = Field(default=1, ge=1, le=50)
    batch_size: int = Field(default=16, ge=1, le=512)
    use_margin: bool = True
    center_rewards_coefficient: float = Field(default=0.0, ge=0, le=10)
    eval_fraction: float = Field(default=0.2, ge=0, lt=1)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class TrainingFormText(BaseModel):
    """The browser form as text, so a bad value re-renders the page with the field named."""

    base_model: str = ""
    max_length: str = "256"
    learning_rate: str = "5e-5"
    epochs: str = "1"
    batch_size: str = "16"
    use_margin: str = ""  # "on" when the checkbox is ticked
    center_rewards_coefficient: str = "0"
    eval_fraction: str = "0.2"
    seed: str = "0"

    def values(self) -> dict[str, Any]:
        return {**self.model_dump(), "use_margin": self.use_margin == "on"}


class QueueOrderForm(BaseModel):
    uncertain_first: str = ""  # "on" when ticked


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    status: str
    config: dict[str, Any]
    progress: dict[str, Any]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
