from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.generation.models import BackendKind, RunStatus


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
    tokens: int = Field(description="tokens generated so far")
    tokens_per_second: float | None
    failures: list[dict[str, Any]] = Field(description="prompts skipped: prompt_id, config, reason")
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
    configs: list[ConfigData] = field(default_factory=list)


@dataclass(frozen=True)
class PromptData:
    id: int
    messages: list[dict[str, str]]


KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
RESERVED_KEYS = frozenset({"import", "edit"})  # config keys of imported and edited candidates


class ConfigIn(BaseModel):
    """A generation config: which model answers, through which backend, with which decoding."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN, description="names the config's candidates", examples=["smol-t07"])
    backend: BackendKind = BackendKind.TRANSFORMERS
    model: str = Field(default="", max_length=300, description="transformers: HF id or path, empty: the "
                       "bundled SmolLM2; openai: the server's model name")
    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    stop: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(default_factory=list, max_length=4)
    system_prompt: str = Field(default="", max_length=10_000,
                               description="prepended as a system turn to prompts that have none")
    base_url: str = Field(default="", max_length=500, pattern=r"^(https?://\S+)?$",
                          examples=["http://127.0.0.1:8080/v1"])
    api_key_env: str = Field(default="", max_length=100, pattern=r"^([A-Z_][A-Z0-9_]*)?$",
                             description="the environment variable holding the API key (the worker's)")
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    max_retries: int = Field(default=3, ge=0, le=10)
    concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_KEYS:
            raise ValueError(f"{value!r} is reserved for imported or edited candidates")
        return value

    @model_validator(mode="after")
    def _remote_needs_a_server(self) -> ConfigIn:
        if self.backend == BackendKind.OPENAI and not (self.base_url and self.model):
            raise ValueError("an openai backend needs base_url and model")
        return self

    def decoding(self) -> dict[str, Any]:
        return self.model_dump(include={"max_new_tokens", "temperature", "top_p", "seed", "stop",
                                        "system_prompt"})

    def remote(self) -> dict[str, Any]:
        if self.backend != BackendKind.OPENAI:
            return {}
        return self.model_dump(include={"base_url", "api_key_env", "timeout_seconds", "max_retries",
                                        "concurrency"})


class ConfigOut(BaseModel):
    key: str
    backend: BackendKind
    model: str
    params: dict[str, Any]
    remote: dict[str, Any]
    implicit: bool = Field(description="true for the project's settings used while it has no configs")


@dataclass(frozen=True)
class ConfigData:
    """A config as the worker needs it: plain data, read once per run."""

    key: str
    backend: BackendKind
    model: str
    params: dict[str, Any]
    remote: dict[str, Any]
    implicit: bool = False

    def out(self) -> ConfigOut:
        return ConfigOut(key=self.key, backend=self.backend, model=self.model, params=self.params,
                         remote=self.remote, implicit=self.implicit)


class ConfigForm(BaseModel):
    """The HTML form of a config: stop sequences one per line, empty fields for the defaults."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    key: str = Field(max_length=64)
    backend: BackendKind = BackendKind.TRANSFORMERS
    model: str = Field(default="", max_length=300)
    max_new_tokens: int = 256
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0
    stop: str = Field(default="", max_length=1000)
    system_prompt: str = Field(default="", max_length=10_000)
    base_url: str = ""
    api_key_env: str = ""

    def to_config(self) -> ConfigIn:
        """Raises pydantic's ValidationError, like the JSON body would."""
        values = self.model_dump()
        values["stop"] = [line for line in self.stop.splitlines() if line.strip()]
        return ConfigIn.model_validate(values)
