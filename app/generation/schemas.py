from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.generation.models import RunStatus


class RunStart(BaseModel):
    model: str | None = Field(default=None, max_length=300,
                              description="override the project's model for this run; omit to use it")


class RunOut(BaseModel):
    id: int
    project_id: int
    status: RunStatus
    model: str
    params: dict[str, Any]
    total_prompts: int
    done_prompts: int
    percent: float
    prompts_per_second: float | None
    eta_seconds: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class PanelState:
    runs: list[RunOut]  # newest first
    active: bool  # a run is queued or running: the panel keeps polling
    remaining: int | None  # prompts still lacking candidates (counted only while no run is active)


@dataclass(frozen=True)
class RunPlan:
    """What the worker needs to know about a run, read in one short transaction."""

    run_id: int
    project_id: int
    model: str
    params: dict[str, Any]
    candidates_per_prompt: int


@dataclass(frozen=True)
class PromptData:
    id: int
    messages: list[dict[str, str]]
