"""The exports load with 🤗 Datasets' JSON loader, offline, with one schema for the whole file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.export import service as export_service
from app.projects.models import Mode
from tests.export.conftest import Voted, expected_trl
from tests.factories import make_judgement, make_project, make_single_item

Loader = Callable[[Path], Any]


def write_export(db: Session, project_id: int, fmt: str, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.writelines(export_service.stream_export(db, project_id=project_id, fmt=fmt, secret="s"))
    return path


@pytest.fixture
def load_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Loader:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    import datasets

    datasets.disable_progress_bars()

    def load(path: Path) -> Any:
        loaded = datasets.load_dataset("json", data_files=str(path), split="train",
                                       cache_dir=str(tmp_path / "hf-cache"))
        assert isinstance(loaded, datasets.Dataset)
        return loaded

    return load


def test_trl_export_loads_as_a_preference_dataset(db: Session, voted: Voted, tmp_path: Path,
                                                  load_json: Loader) -> None:
    dataset = load_json(write_export(db, voted.project.id, "trl", tmp_path / "export.jsonl"))
    assert dataset.column_names == ["prompt", "chosen", "rejected", "margin", "item_id", "prompt_id",
                                    "n_votes", "agreement"]
    assert dataset.num_rows == 2
    assert str(dataset.features["margin"].dtype) == "float64"
    assert dataset.to_list() == expected_trl(voted)  # a system turn in one prompt, not in the other


def test_raw_export_loads_with_ratings_and_null_candidates(db: Session, voted: Voted, tmp_path: Path,
                                                           load_json: Loader) -> None:
    dataset = load_json(write_export(db, voted.project.id, "raw", tmp_path / "raw.jsonl"))
    assert dataset.num_rows == 10
    likert = make_project(db, mode=Mode.LIKERT)
    make_judgement(db, make_single_item(db, likert), voted.annotators[0], ratings={"helpfulness": 3},
                   seconds=2.0)
    ratings = load_json(write_export(db, likert.id, "raw", tmp_path / "likert.jsonl"))
    assert ratings[0]["ratings"] == {"helpfulness": 3}
    assert ratings[0]["candidate_b_id"] is None
