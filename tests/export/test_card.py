"""The dataset card: built from what streamed, written beside the CLI's file, and packed in the zip."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.cli import app as cli
from app.config import Settings, get_settings
from app.db import unit_of_work, utcnow
from app.export import service as export_service
from app.export.card import card_markdown
from app.export.package import zip_stream
from app.export.schemas import ExportOptions
from tests.export.conftest import Voted
from tests.factories import make_judgement, make_pair_item, make_project
from tests.factories import make_user_without_password as make_user


def test_card_counts_hash_and_provenance_of_a_run(db: Session, voted: Voted,
                                                  session_factory: sessionmaker[Session]) -> None:
    options = ExportOptions(min_agreement=0.7, exclude_flags=["unsafe"])
    plan = export_service.plan_export(db, project_id=voted.project.id, options=options)
    run = export_service.start(plan, factory=session_factory, secret="k", now=utcnow())
    with pytest.raises(RuntimeError):
        run.card()
    data = "".join(run.lines()).encode()
    card = run.card()
    assert card["sha256"] == hashlib.sha256(data).hexdigest() and card["bytes"] == len(data)
    assert card["project"] == {"id": voted.project.id, "name": voted.project.name}
    assert card["aggregation"] == {"method": "majority", "tie_policy": "drop"}
    assert card["filters"]["min_agreement"] == 0.7 and card["filters"]["exclude_flags"] == ["unsafe"]
    # 5 voted items: majority (2/3) falls below 0.7; swapped (1.0) is kept; ties, both_bad (1.0) and
    # split (1/2, below) give no pair; so 3 items pass the agreement bar and 2 of them have no preference.
    counts = card["counts"]
    assert (counts["lines"], counts["preferences"], counts["items_with_votes"]) == (1, 1, 3)
    assert (counts["items_below_min_agreement"], counts["items_without_preference"]) == (2, 2)
    assert (counts["judgements"], counts["annotators"], counts["items"]) == (10, 3, 5)
    assert card["agreement"]["mean_item_agreement"] == 1.0 and card["agreement"]["unanimous_share"] == 1.0
    assert card["guideline_versions"] == [{"version": None, "judgements": 10}]
    assert card["models"] == [{"model": None, "source": "import", "candidates": 10}]
    markdown = card_markdown(card)
    assert markdown.startswith(f"# Dataset card: {card['dataset']}")
    assert card["sha256"] in markdown and "| min agreement | 0.7 |" in markdown


def test_zip_stream_holds_the_lines_then_the_card_made_after_them() -> None:
    seen: list[str] = []

    def lines() -> Iterator[str]:
        for n in range(5000):
            seen.append("x")
            yield json.dumps({"n": n, "noise": hashlib.sha256(str(n).encode()).hexdigest() * 2}) + "\n"

    chunks = list(zip_stream(lines(), stem="s", card=lambda: {"dataset": "s.jsonl", "lines": len(seen),
                                                                   **SAMPLE_CARD}))
    assert len(chunks) > 1  # streamed as it was built, not in one piece at the end
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.namelist() == ["s.jsonl", "s.card.json", "s.card.md"]
        assert len(archive.read("s.jsonl").splitlines()) == 5000
        assert json.loads(archive.read("s.card.json"))["lines"] == 5000


SAMPLE_CARD = {
    "project": {"id": 1, "name": "p"}, "created_at": "2026-12-01T00:00:00+00:00", "format": "trl",
    "style": "conversational", "margin": True, "aggregation": None, "filters": {}, "counts": {},
    "agreement": {"measure": "m", "items": 0, "mean_item_agreement": None, "unanimous_share": None},
    "models": [], "guideline_versions": [], "sha256": "0" * 64, "bytes": 0,
}


def test_cli_writes_the_jsonl_and_its_card_beside_it_and_audits(
        committed: sessionmaker[Session], settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with unit_of_work(committed) as session:
        u1, u2 = make_user(session), make_user(session)
        project = make_project(session, members=[u1, u2, make_user(session, Role.RESEARCHER)])
        for n in range(3):
            item = make_pair_item(session, project, text=f"Q{n}", a=f"good {n}", b=f"bad {n}")
            make_judgement(session, item, u1, "a", 2)
            make_judgement(session, item, u2, "a" if n else "b", 1)
        project_id = project.id
    monkeypatch.setenv("PREFSTUDIO_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("PREFSTUDIO_SECRET_KEY", "cli-secret")
    get_settings.cache_clear()
    out = tmp_path / "prefs.jsonl"
    try:
        result = CliRunner().invoke(cli, ["export", "--project", str(project_id), "--format", "hh",
                                          "--min-agreement", "0.9", "--out", str(out)])
        bad = CliRunner().invoke(cli, ["export", "--project", str(project_id), "--tie-policy", "coin"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(row["chosen"].endswith("good " + row["chosen"][-1]) for row in rows)
    card = json.loads((tmp_path / "prefs.card.json").read_text())
    assert card["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["counts"]["items_below_min_agreement"] == 1 and card["format"] == "hh"
    assert (tmp_path / "prefs.card.md").read_text().startswith("# Dataset card")
    assert bad.exit_code == 1 and "tie_policy" in bad.output
    with unit_of_work(committed) as session:
        events = session.query(AuditEvent).filter_by(project_id=project_id, action="export").all()
        assert [(e.actor_id, (e.after or {})["channel"], (e.after or {})["format"]) for e in events] == [
            (None, "cli", "hh")]
