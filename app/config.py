"""Settings from the environment (prefix PREFSTUDIO_)."""

from __future__ import annotations

import os
import secrets
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
    workers: int = Field(default=1, ge=1, description="web processes of `prefstudio serve`")
    secret_key: str = Field(
        default="", description="keys annotator pseudonyms; empty: generated once into the data dir"
    )
    session_hours: int = Field(default=12, ge=1, description="a browser session's longest life")
    session_idle_minutes: int = Field(default=120, ge=1, description="an unused browser session ends")
    login_failures_per_account: int = Field(default=10, ge=1, description="failed sign-ins per window")
    login_failures_per_address: int = Field(default=50, ge=1, description="failed sign-ins per window")
    login_window_minutes: int = Field(default=15, ge=1)
    secure_cookies: bool = Field(default=False, description="always mark cookies Secure (serving over HTTPS)")
    trust_proxy: bool = Field(
        default=False, description="behind a reverse proxy: trust its X-Forwarded-Proto to tell HTTPS apart"
    )
    max_upload_mb: int = 20
    max_import_rows: int = 100_000
    generation_model: str = Field(default="", description="HF id or path; empty: bundled SmolLM2")
    db_pool_size: int = Field(default=10, ge=1, description="connections each web process keeps open")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections a web process may open")
    worker_poll_seconds: float = 1.0
    job_lease_seconds: int = 600

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def with_secret_key(settings: Settings) -> Settings:
    """Fill an empty secret key from `<data_dir>/secret.key`, creating that file (mode 0600) once."""
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return with_secret_key(Settings())
