"""Settings from the environment (prefix PREFSTUDIO_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREFSTUDIO_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="postgresql+psycopg://… ; unset: start the embedded Postgres"
    )
    data_dir: Path = Path(".prefstudio")
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = Field(default="", description="unused for sessions (they are server-side)")
    session_hours: int = 12
    secure_cookies: bool = False
    max_upload_mb: int = 20
    max_import_rows: int = 100_000
    generation_model: str = Field(default="", description="HF id or path; empty: bundled SmolLM2")
    worker_poll_seconds: float = 1.0
    job_lease_seconds: int = 600

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
