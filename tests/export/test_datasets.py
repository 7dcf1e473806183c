"""Every export format loads with 🤗 Datasets' JSON loader, offline, with one schema for the whole file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.export import service as export_service
from app.export.schemas import ExportOptions
from app.projects.models import Mode
from tests.export.conftest import Voted, expected_trl
from tests.factories import make_judgement, make_project, make_single_item

Loader = Callable[[Path], Any]
COLUMNS = {
    "trl": ["prompt", "chosen", "rejected", "margin", "item_id", "prompt_id", "chosen_id", "rejected_id",
            "n_votes", "agreement", "confidence", "source"],
    "trl-implicit": ["chosen", "rejected", "margin", "item_id", "prompt_id", "chosen_id", "rejected_id",
                     "n_votes", "agreement", "confidence", "source"],
    "kto": ["prompt", "completion", "label", "item_id", "prompt_id", "candidate_id", "n_votes", "agreement",
            "confidence", "source"],
    "hh": ["chosen", "rejected", "margin", "item_id", "prompt_id", "chosen_id", "rejected_id", "n_votes",
           "agreement", "confidence", "source"],
    "raw": ["judgement_id", "item_id", "prompt_id", "kind", "candidate_a_id", "candidate_b_id", "annotator",
            "swapped", "left_candidate_id", "choice", "strength", "ratings", "rationale", "flags", "seconds",
            "guideline_version", "created_at"],
    "ratings": ["prompt", "response", "candidate_id", "item_id", "prompt_id", "model", "n_annotators", "mean",
                "ratings"],
}


def write_export(db: Session, project_id: int, path: Path, **options: object) -> Path:
    lines = export_service.stream_export(db, project_id=project_id, secret="s",
                                         options=ExportOptions.model_validate(options))
    with path.open("w", encoding="utf-8") as out:
        out.writelines(lines)
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
    dataset = load_json(write_export(db, voted.project.id, tmp_path / "export.jsonl"))
    assert dataset.column_names == COLUMNS["trl"]
    assert dataset.num_rows == 2
    assert str(dataset.features["margin"].dtype) == "float64"
    assert dataset.to_list() == expected_trl(voted)  # a system turn in one prompt, not in the other


@pytest.mark.parametrize("fmt", ["trl", "trl-implicit", "kto", "hh", "raw"])
@pytest.mark.parametrize("aggregation", ["majority", "dawid-skene", "bradley-terry"])
def test_every_pair_format_loads_with_one_schema(db: Session, voted: Voted, tmp_path: Path, load_json: Loader,
                                                 fmt: str, aggregation: str) -> None:
    if fmt == "raw" and aggregation != "majority":
        pytest.skip("raw is not aggregated")
    dataset = load_json(write_export(db, voted.project.id, tmp_path / f"{fmt}.jsonl", format=fmt,
                                     aggregation=aggregation))
    assert dataset.column_names == COLUMNS[fmt]
    # Dawid-Skene also decides the 1-1 split, by who is the more reliable annotator; kto has 2 lines a pair
    pairs = 3 if aggregation == "dawid-skene" else 2
    assert dataset.num_rows == {"raw": 10, "kto": 2 * pairs}.get(fmt, pairs)


def test_standard_style_loads_as_strings(db: Session, voted: Voted, tmp_path: Path,
                                         load_json: Loader) -> None:
    dataset = load_json(write_export(db, voted.project.id, tmp_path / "std.jsonl", style="standard",
                                     margin=False))
    assert dataset.column_names == [c for c in COLUMNS["trl"] if c != "margin"]
    assert all(isinstance(row["prompt"], str) and isinstance(row["chosen"], str) for row in dataset)


def test_ratings_and_raw_load_with_struct_columns(db: Session, voted: Voted, tmp_path: Path,
                                                  load_json: Loader) -> None:
    likert = make_project(db, mode=Mode.LIKERT)
    for body in ("One.", "Two."):
        item = make_single_item(db, likert, body=body)
        make_judgement(db, item, voted.annotators[0], ratings={"helpfulness": 3, "correctness": 5},
                       seconds=2.0)
        make_judgement(db, item, voted.annotators[1], ratings={"helpfulness": 4})
    ratings = load_json(write_export(db, likert.id, tmp_path / "ratings.jsonl", format="ratings"))
    assert ratings.column_names == COLUMNS["ratings"]
    assert ratings[0]["mean"]["helpfulness"] == 3.5 and ratings[0]["n_annotators"] == 2
    raw = load_json(write_export(db, likert.id, tmp_path / "raw.jsonl", format="raw"))
    assert raw[0]["ratings"] == {"correctness": 5, "helpfulness": 3}
    assert raw[0]["candidate_b_id"] is None
