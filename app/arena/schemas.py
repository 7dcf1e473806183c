from __future__ import annotations

from pydantic import BaseModel, Field


class ConfigRank(BaseModel):
    key: str
    model: str
    score: float = Field(description="Bradley-Terry strength on the Elo scale (mean 1000)")
    low: float | None = Field(description="95% bootstrap interval; null with no judgements")
    high: float | None
    games: int
    points: float = Field(description="wins plus half the ties")


class ArenaOut(BaseModel):
    project_id: int
    judgements: int = Field(description="pairwise judgements between two configs (repeats left out)")
    ranking: list[ConfigRank] = Field(description="best first")
    keys: list[str] = Field(description="the rows and columns of win_rate, in ranking order")
    win_rate: list[list[float | None]] = Field(description="[i][j]: the share of points config i took "
                                               "from config j, ties as half; null: they never met")
    games: list[list[int]]
